"""Errors a user can fix. Hydra prints a CompactHydraException as its message alone (no traceback
unless HYDRA_FULL_ERROR=1) and exits 1, the same way it reports its own composition errors."""
from __future__ import annotations

import contextlib
from typing import Iterator

from hydra.errors import CompactHydraException


class ConfigError(CompactHydraException):
    """A config value out of range or an unknown name; the message names key, value and what is allowed."""


class DataError(CompactHydraException):
    """A dataset that cannot be found or read; the message names each place looked and how to get it."""


class SweepInterrupted(CompactHydraException):
    """Ctrl-C or SIGTERM during a sweep; the message says how to resume."""


class FileError(CompactHydraException):
    """A job file that cannot be written (a full disk, no permission); the message names the file and why."""


class OutOfMemory(CompactHydraException):
    """The process could not allocate memory; the message says what it was doing and which knob sizes it."""


def is_out_of_memory(exc: BaseException) -> bool:
    """``exc`` or an error it was raised from is an allocation failure: Python's MemoryError, torch's
    CPU allocator ("can't allocate memory") or ``torch.OutOfMemoryError`` (CUDA's "out of memory")."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, MemoryError) or (
            isinstance(seen, RuntimeError) and ("can't allocate memory" in str(seen) or "out of memory" in str(seen))
        ):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


@contextlib.contextmanager
def out_of_memory_named(doing: str, knobs: str) -> Iterator[None]:
    """Re-raise an allocation failure inside as one :class:`OutOfMemory` line: ``doing`` and ``knobs``
    (what to lower), rather than as the error of whatever step happened to allocate."""
    try:
        yield
    except Exception as exc:
        if not is_out_of_memory(exc):
            raise
        raise OutOfMemory(f"out of memory {doing}; lower {knobs}") from exc
