"""Keep freed memory in the process, so training steps stop page-faulting their buffers in.

Each step allocates tensors of the same sizes again (a 256 x 784 batch and its gradient are
800 KB). glibc serves blocks above its mmap threshold (128 KB at first) with a fresh mmap() and
unmaps them when freed, so every step touches new pages; on these VMs that was about a third of
an MLP epoch on the CPU (benchmarks/trainer_speed.py). Raising glibc's mmap and trim thresholds
lets malloc reuse the blocks, which is what jemalloc and tcmalloc (PyTorch's CPU tuning guide
recommends them) do by default.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's upper limit for this setting on 64-bit
TRIM_THRESHOLD = 1024 * 1024 * 1024


@functools.cache  # once per process: finding libc runs ldconfig, and a process may run many jobs
def reuse_freed_memory() -> bool:
    """Tune glibc's malloc for this process; False (and nothing changed) where it is not glibc."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    libc = ctypes.CDLL(name)
    if not hasattr(libc, "mallopt") or not hasattr(libc, "gnu_get_libc_version"):
        return False
    return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) and libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
