"""SIGTERM as Ctrl-C: `kill PID` (or a cluster's time limit) stops a job or sweep the way Ctrl-C does,
so the running job records ``interrupted`` and the sweep ends with a message saying how to resume."""
from __future__ import annotations

import contextlib
import signal
import threading
from typing import Any, Iterator


def raise_keyboard_interrupt(signum: int, frame: Any) -> None:
    """A SIGTERM handler: stop the way Ctrl-C does."""
    raise KeyboardInterrupt


def _replaceable(handler: Any) -> bool:
    """True for the default SIGTERM handler, and for submitit's ``bypass``: a submitit job (SLURM,
    ``submitit_local``) only logs SIGTERM (it checkpoints and requeues on USR2), so under it a job
    would train on until SIGKILL and its metrics.json would say ``running`` for ever."""
    submitits = getattr(handler, "__module__", None) or ""
    return handler == signal.SIG_DFL or (submitits.startswith("submitit.") and handler.__name__ == "bypass")


@contextlib.contextmanager
def sigterm_as_keyboard_interrupt() -> Iterator[None]:
    """Within the block SIGTERM raises KeyboardInterrupt. A no-op outside the main thread, and where
    a handler of a sweeper is already set (such as a worker's stop-once handler, which raises it too)."""
    if threading.current_thread() is not threading.main_thread() or not _replaceable(signal.getsignal(signal.SIGTERM)):
        yield
        return
    previous = signal.signal(signal.SIGTERM, raise_keyboard_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
