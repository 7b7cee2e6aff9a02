"""One sweep per sweep dir at a time: a sweep holds its dir while it runs.

The lock is an ``flock`` on ``.sweeplab.lock`` in the sweep dir, taken by the sweep's main process,
so the kernel releases it when that process and the processes it forked (its workers) are gone,
however they end (``kill -9`` included). The file says who holds it (host:pid and command), for the
one line that refuses a second sweep.

Two holders may share a dir only on purpose: Optuna processes that join one study in a database
server (``hydra.sweeper.storage`` an RDB URL such as PostgreSQL) take the lock shared, keyed by the
storage and study name, so the same command started again (on this machine or on others that see
the same dir) joins the study; a grid, or a study whose storage is a file (the default SQLite file
in the sweep dir, a journal file), holds the dir alone. A study's own ``n_workers`` are forked
from the holder and need no lock of their own.
"""
from __future__ import annotations

import fcntl
import json
import os
import re
import shlex
import socket
import sys
from pathlib import Path
from typing import IO, Any, Optional

from sweeplab.errors import ConfigError

LOCK = ".sweeplab.lock"
# user:password@ in a URL on the command line: the lock file is readable by others
_PASSWORD = re.compile(r"(://[^:/@\s]*:)[^@\s]*@")
# the locks this process holds, by sweep dir: a process holds a dir once (in-process sweeps run one
# after another in one process, and flock would make a second open file of it wait on the first)
_held: dict[Path, "SweepDirLock"] = {}


class SweepDirBusy(ConfigError):
    """Another sweep holds the sweep dir; the message names it."""


class SweepDirLock:
    """A held sweep dir; ``release`` (or leaving the ``with`` block) lets it go, else the process's end."""

    def __init__(self, path: Path, file: Optional[IO[str]]) -> None:
        self.path, self.file = path, file

    def release(self) -> None:
        if self.file is not None and _held.get(self.path) is self:
            del _held[self.path]
            fcntl.flock(self.file, fcntl.LOCK_UN)
            self.file.close()

    def __enter__(self) -> "SweepDirLock":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


def hold_sweep_dir(sweep_dir: Path, join: Optional[str] = None) -> SweepDirLock:
    """Create ``sweep_dir`` if needed and hold it, or raise :class:`SweepDirBusy` naming the holder.

    ``join`` (an Optuna study in a database server: its storage URL and study name) takes the lock
    shared with holders of the same ``join``; None holds the dir alone. A dir this process already
    holds is held again at no cost (the returned lock's ``release`` then leaves it held).
    """
    path = sweep_dir.absolute()
    if path in _held:
        return SweepDirLock(path, None)
    file = open_lock_file(path)
    try:
        key = None if join is None else masked(join)
        if _try(file, fcntl.LOCK_EX):
            write_holder(file, key)
            if key is not None:  # shared from now on, for the study's other processes
                if not _try(file, fcntl.LOCK_SH):
                    raise SweepDirBusy(busy(path, read_holder(path)))
        else:
            holder = read_holder(path)
            if key is None or holder.get("join") != key or not _try(file, fcntl.LOCK_SH):
                raise SweepDirBusy(busy(path, holder))
    except BaseException:
        file.close()
        raise
    lock = _held[path] = SweepDirLock(path, file)
    return lock


def hold_study_dir(sweep_dir: Path, storage: Any, study_name: Optional[str]) -> SweepDirLock:
    """:func:`hold_sweep_dir` for an Optuna study: shared with the processes of the same study when
    its storage is a database server (``storage`` a URL, or a node with a ``url``, not SQLite)."""
    url = storage if isinstance(storage, str) else getattr(storage, "get", lambda key: None)("url")
    in_server = isinstance(url, str) and not url.startswith("sqlite")
    return hold_sweep_dir(sweep_dir, join=f"{url} study {study_name}" if in_server else None)


def open_lock_file(sweep_dir: Path) -> IO[str]:
    """The lock file, creating the dir; a dir that cannot be made or written ends in one line."""
    check_dir("hydra.sweep.dir", sweep_dir)
    try:
        return open(sweep_dir / LOCK, "a+")
    except OSError as exc:  # a read-only or full filesystem
        raise ConfigError(f"hydra.sweep.dir={sweep_dir}: cannot write {sweep_dir / LOCK}: {exc.strerror}; "
                          "give a dir path this user can create and write") from None


def check_dir(key: str, folder: Path) -> None:
    """Create ``folder``; one line naming ``key`` when it cannot be (a file in the way, no permission,
    a name too long)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if not os.access(folder, os.W_OK):
            raise PermissionError(13, "Permission denied", str(folder))
    except OSError as exc:
        what = f"{exc.strerror} ({exc.filename})" if exc.filename else str(exc)
        shown = str(folder) if len(str(folder)) <= 200 else f"{str(folder)[:100]}... ({len(str(folder))} characters)"
        raise ConfigError(f"{key}={shown}: cannot create or write it: {what}; "
                          "give a dir path this user can create and write") from None


def _try(file: IO[str], mode: int) -> bool:
    try:
        fcntl.flock(file, mode | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


def write_holder(file: IO[str], join: Optional[str]) -> None:
    file.seek(0)
    file.truncate()
    holder = {"process": f"{socket.gethostname()}:{os.getpid()}", "command": masked(shlex.join(sys.argv)),
              "join": join}
    try:  # unbuffered: a full disk fails here, leaving nothing for close() to flush again
        os.write(file.fileno(), (json.dumps(holder) + "\n").encode())
    except OSError as exc:
        raise ConfigError(f"hydra.sweep.dir={Path(file.name).parent}: cannot write {file.name}: {exc.strerror}; "
                          "make room, or give another hydra.sweep.dir") from None


def read_holder(sweep_dir: Path) -> dict[str, Any]:
    try:
        holder = json.loads((sweep_dir / LOCK).read_text())
        return holder if isinstance(holder, dict) else {}
    except (OSError, ValueError):  # written at this moment, or damaged: the holder is unknown
        return {}


def busy(sweep_dir: Path, holder: dict[str, Any]) -> str:
    process = str(holder.get("process", "an unknown process"))
    host, _, pid = process.rpartition(":")
    if host == socket.gethostname() and pid.isdigit() and not _alive(int(pid)):
        process += " (gone: processes it started still hold it)"
    command = holder.get("command") or "unknown command"
    return (f"hydra.sweep.dir={sweep_dir}: another sweep is running in it ({process}: {command}); "
            "wait for it to end, or give another hydra.sweep.dir")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process
    return True


def masked(text: str) -> str:
    """``text`` with the password of any URL in it masked."""
    return _PASSWORD.sub(r"\1***@", text)
