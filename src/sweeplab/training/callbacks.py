"""Callbacks the trainer calls: history file, epoch lines, progress bars, early stopping, profiler."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import torch
from tqdm import tqdm

from sweeplab.jobfiles import write_atomic, write_history
from sweeplab.training.trainer import Callback, EpochRecord, StopTraining

if TYPE_CHECKING:
    import optuna

log = logging.getLogger(__name__)


class HistoryFile(Callback):
    """Rewrites history.csv (atomically) after every epoch, so a killed job keeps what it finished."""

    def __init__(self, job_dir: Path, history: Sequence[EpochRecord] = ()):
        self.job_dir = job_dir
        self.records = list(history)  # a resumed run's epochs before this process

    def on_epoch_end(self, record: EpochRecord) -> None:
        self.records.append(record)
        write_history(self.job_dir, self.records)


class EpochLog(Callback):
    """One log line per epoch (console and the job's log file)."""

    def on_train_start(self, epochs: int, batches_per_epoch: int) -> None:
        self.epochs = epochs

    def on_epoch_end(self, r: EpochRecord) -> None:
        log.info(
            "epoch %*d/%d  train_loss %.4f  train_acc %.4f  val_loss %.4f  val_acc %.4f  lr %g  %.2fs",
            len(str(self.epochs)), r.epoch, self.epochs, r.train_loss, r.train_acc,
            r.val_loss, r.val_acc, r.lr, r.seconds,
        )


class ProgressBars(Callback):
    """A bar over epochs and one over the current epoch's batches, for a terminal."""

    def on_train_start(self, epochs: int, batches_per_epoch: int) -> None:
        self.epoch_bar = tqdm(total=epochs, desc="epochs", unit="epoch", position=0, dynamic_ncols=True)
        self.batch_bar = tqdm(total=batches_per_epoch, desc="batches", unit="batch", position=1,
                              leave=False, dynamic_ncols=True)

    def on_batch_end(self) -> None:
        self.batch_bar.update()

    def on_epoch_end(self, record: EpochRecord) -> None:
        self.epoch_bar.set_postfix(val_acc=f"{record.val_acc:.4f}", refresh=False)
        self.epoch_bar.update()
        self.batch_bar.reset()

    def on_train_end(self) -> None:
        self.batch_bar.close()
        self.epoch_bar.close()


class EarlyStopping(Callback):
    """Stops after ``patience`` epochs without a better validation accuracy."""

    def __init__(self, patience: int, history: Sequence[EpochRecord] = ()):
        self.patience = patience
        self.best = float("-inf")
        self.since_best = 0
        for record in history:  # a resumed run's epochs before this process
            self.observe(record.val_acc)

    def observe(self, val_acc: float) -> None:
        if val_acc > self.best:
            self.best, self.since_best = val_acc, 0
        else:
            self.since_best += 1

    def on_epoch_end(self, record: EpochRecord) -> None:
        self.observe(record.val_acc)
        if self.since_best >= self.patience:
            raise StopTraining("ok", f"early stop: no better val_acc for {self.patience} epochs")


class OptunaPruning(Callback):
    """Reports one per-epoch metric to the job's Optuna trial and stops when the pruner says so.

    The last epoch is reported but never pruned: the trial has used its whole budget by then.
    """

    def __init__(self, trial: optuna.Trial, metric: str):
        self.trial = trial
        self.metric = metric

    def on_train_start(self, epochs: int, batches_per_epoch: int) -> None:
        self.epochs = epochs

    def on_epoch_end(self, record: EpochRecord) -> None:
        self.trial.report(getattr(record, self.metric), record.epoch)
        if record.epoch < self.epochs and self.trial.should_prune():
            pruner = type(self.trial.study.pruner).__name__
            raise StopTraining("pruned", f"pruned by {pruner} after epoch {record.epoch} ({self.metric})")


class Profile(Callback):
    """torch.profiler from the first epoch to the end of training (``debug=profile``: one epoch,
    its evaluation included); the operators by self CPU time go to ``profile.txt`` in the job dir."""

    ROWS = 30

    def __init__(self, job_dir: Path):
        self.path = job_dir / "profile.txt"

    def on_train_start(self, epochs: int, batches_per_epoch: int) -> None:
        activities = [torch.profiler.ProfilerActivity.CPU]
        if torch.cuda.is_available():
            activities.append(torch.profiler.ProfilerActivity.CUDA)
        self.profiler = torch.profiler.profile(activities=activities)
        self.profiler.start()

    def on_train_end(self) -> None:
        self.profiler.stop()
        table = self.profiler.key_averages().table(sort_by="self_cpu_time_total", row_limit=self.ROWS)
        write_atomic(self.path, lambda tmp: tmp.write_text(table + "\n"))
        log.info("profile: %s", self.path)
