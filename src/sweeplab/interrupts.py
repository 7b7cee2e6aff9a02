"""SIGTERM as Ctrl-C: `kill PID` (or a cluster's time limit) stops a job or sweep the way Ctrl-C does,
so the running job records ``interrupted`` and the sweep ends with a message saying how to resume."""
from __future__ import annotations

import contextlib
import signal
import threading
from typing import Any, Iterator


def _raise_keyboard_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def sigterm_as_keyboard_interrupt() -> Iterator[None]:
    """Within the block SIGTERM raises KeyboardInterrupt. A no-op outside the main thread, and where
    a handler is already set (a sweeper's own, such as the Optuna workers' stop-once handler)."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGTERM) != signal.SIG_DFL:
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
