"""The Optuna trial the running job belongs to, if any.

The Optuna sweeper runs each job in the process that holds the job's trial and sets it here around
the job (:func:`running`); the task then reports validation accuracy to it every epoch and stops
when the study's pruner says so (:class:`sweeplab.callbacks.OptunaPruning`). Outside a study, or
when a launcher runs the job in another process, there is no current trial and nothing is pruned.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING, Iterator

if TYPE_CHECKING:
    import optuna

_current: optuna.Trial | None = None


def current() -> optuna.Trial | None:
    return _current


@contextmanager
def running(trial: optuna.Trial) -> Iterator[None]:
    global _current
    _current, previous = trial, _current
    try:
        yield
    finally:
        _current = previous
