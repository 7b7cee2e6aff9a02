"""What the report reads and writes goes wrong in one line that names the file.

Every file of a report is written to a temporary sibling and renamed over its name, so a report
that fails half-way (a full disk) leaves each file of the previous report whole.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from sweeplab.jobfiles import write_atomic


class ReportError(Exception):
    """An input the report cannot make sense of, or a file it cannot write: one line naming the file."""


def write_file(path: Path, write: Callable[[Path], None]) -> Path:
    """``write(tmp)`` into a temporary sibling of ``path``, then renamed to ``path``."""
    try:
        write_atomic(path, write)
    except OSError as exc:
        raise ReportError(f"{path}: cannot write it: {exc.strerror or exc}; the report is unfinished, "
                          "each of its files is whole, new or from before") from exc
    return path
