"""A job that stands still mid-run until a signal ends it, so a test's kill lands mid-job every time.

A tracker (the ``logger`` group's extension point), added with the overrides ``held_at`` returns: when
the environment variable SWEEPLAB_TEST_HOLD names a file, job JOB creates that file at the end of its
epoch EPOCH, before that epoch reaches history.csv or checkpoint.pt (trackers are the first callbacks),
and waits there for the test's signal. Without the variable (the rerun) it does nothing, so the killed
run and its rerun have the same overrides, as a resume needs. Training can then be tiny: no epoch has
to be long enough for a signal to land in it.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

from sweeplab.job.tracking import Job, Tracker

HOLD = "SWEEPLAB_TEST_HOLD"


def held_at(job: int, epoch: int) -> list[str]:
    """The overrides that hold job ``job`` at the end of its epoch ``epoch`` (a grid's job number, a study's trial)."""
    return ["+logger.hold._target_=hold.HoldAtEpoch", f"+logger.hold.job={job}", f"+logger.hold.epoch={epoch}"]


class HoldAtEpoch(Tracker):
    def __init__(self, job: int, epoch: int):
        self.job, self.epoch = str(job), epoch
        self.signal_file: str | None = None

    def start(self, cfg, job: Job) -> None:
        self.signal_file = os.environ.get(HOLD) if job.name == self.job else None

    def on_epoch_end(self, record) -> None:
        if self.signal_file and record.epoch == self.epoch:
            Path(self.signal_file).touch()
            while True:  # a signal's handler raises here (KeyboardInterrupt), or kill -9 ends the process
                time.sleep(0.01)
