"""What a local worker process does first: take its share of the cores, stop cleanly on a signal, die
with its parent. Shared by the Optuna sweeper's workers and the pool launcher's."""
from __future__ import annotations

import os
import signal
import sys
from typing import Any


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def share_cores(n_workers: int) -> int:
    """Give this worker ``cores / n_workers`` torch threads (at least one); returns how many.

    Call it before torch does any work in the process. A thread count the user set in
    OMP_NUM_THREADS wins; a job's own ``threads`` key still overrides it for that job.
    """
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(variable, str(max(1, usable_cores() // n_workers)))
    threads = int(os.environ["OMP_NUM_THREADS"])
    if "torch" in sys.modules:  # imported before the fork: it has read the variables already
        sys.modules["torch"].set_num_threads(threads)
    return threads


def raise_keyboard_interrupt(signum: int, frame: Any) -> None:
    """SIGTERM handler of a launching process: stop the way Ctrl-C does, so running jobs record it."""
    raise KeyboardInterrupt


def stop_once(signum: int, frame: Any) -> None:
    """A worker's SIGINT and SIGTERM handler: stop like Ctrl-C, and let a second signal (Ctrl-C
    reaches the workers and the main process forwards it too) not cut the recording short."""
    for other in (signal.SIGINT, signal.SIGTERM):
        signal.signal(other, signal.SIG_IGN)
    raise KeyboardInterrupt


def become_worker(n_workers: int) -> int:
    """Set up a freshly forked worker: its cores, its signal handlers, death with the parent.
    Returns its torch thread count."""
    threads = share_cores(n_workers)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, stop_once)
    die_with_parent()
    return threads


def die_with_parent() -> None:
    """Linux: a worker gets SIGTERM when the main process dies, even by kill -9, and records it."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
