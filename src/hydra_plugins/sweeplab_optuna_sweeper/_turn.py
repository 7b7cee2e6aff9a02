"""Local workers' turns to count a study's trials and ask for the next one."""
from __future__ import annotations

import fcntl
from pathlib import Path
from typing import IO


class AskingTurn:
    """One worker's turn to count the study's trials and ask for the next: an exclusive ``flock`` on a
    file in the sweep dir. Each worker (process or thread) opens the file itself, so their locks
    exclude each other, and the kernel releases the lock of a worker that dies holding it."""

    def __init__(self, path: Path) -> None:
        self.file: IO[str] = open(path, "a")
        self.held = False

    def take(self) -> None:
        fcntl.flock(self.file, fcntl.LOCK_EX)
        self.held = True

    def give_back(self) -> None:
        if self.held:
            self.held = False
            fcntl.flock(self.file, fcntl.LOCK_UN)

    def close(self) -> None:
        self.give_back()
        self.file.close()
