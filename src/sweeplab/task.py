"""The task function: validate -> data -> model -> fit -> test -> files; returns the objective.

``train.py`` at the top of the repo hands Hydra's composed config to :func:`main`. Tests call
:func:`run` with a config from ``compose`` and a temporary job dir.
"""
from __future__ import annotations

import contextlib
import logging
import math
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, ListConfig
from torch import nn
from tqdm.contrib.logging import logging_redirect_tqdm

import sweeplab.trial
from sweeplab import sweeplab_task
from sweeplab.allocator import reuse_freed_memory
from sweeplab.callbacks import EarlyStopping, EpochLog, HistoryFile, OptunaPruning, Profile, ProgressBars
from sweeplab.checkpoint import Checkpoint, fingerprint, restore
from sweeplab.config import validate
from sweeplab.data import Splits, load_splits
from sweeplab.errors import ConfigError
from sweeplab.interrupts import sigterm_as_keyboard_interrupt
from sweeplab.jobfiles import PER_EPOCH_METRICS, Metrics, ended_by, write_metrics
from sweeplab.model import check_forward, count_parameters, describe, instantiate_model, loss_function
from sweeplab.optim import build_optimizer
from sweeplab.schedule import build_schedule
from sweeplab.tracking import tracked
from sweeplab.trainer import Callback, EpochRecord, FitResult, batches_per_epoch, evaluate, fit
from sweeplab.workers import worker_cuda_device

log = logging.getLogger(__name__)


@sweeplab_task
def main(cfg: DictConfig) -> float | tuple[float, ...]:
    """Hydra task: one run in Hydra's job dir. Progress bars only on a terminal outside a multirun."""
    hydra_cfg = HydraConfig.get()
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    bars = cfg.progress == "bar" or (cfg.progress == "auto" and not multirun and sys.stderr.isatty())
    # Hydra prints a failed job's error when the run (or the sweep) ends; in a sweep we say it as it happens too.
    with sigterm_as_keyboard_interrupt():
        return run(cfg, Path(hydra_cfg.runtime.output_dir), progress_bars=bars, log_failure=multirun)


def run(
    cfg: DictConfig, job_dir: Path, progress_bars: bool = False, log_failure: bool = True
) -> float | tuple[float, ...]:
    """Train ``cfg`` into ``job_dir``. Any failure is written to metrics.json before it propagates."""
    started = time.perf_counter()
    begin_job(job_dir)
    with failure_recorded(job_dir, started, log_failure):
        validate(cfg)
        with tracked(cfg, job_dir) as trackers:  # a tracker that cannot start ends the job here
            metrics = train(cfg, job_dir, progress_bars, trackers)
            metrics.wall_seconds = time.perf_counter() - started
            trackers.finish(metrics)
    return end_job(cfg, job_dir, metrics, metrics.wall_seconds)


def begin_job(job_dir: Path) -> None:
    job_dir.mkdir(parents=True, exist_ok=True)
    # who runs it: the report tells a job that is still running from one whose process was killed (kill -9)
    write_metrics(job_dir, Metrics(status="running", process=f"{socket.gethostname()}:{os.getpid()}"))


@contextlib.contextmanager
def failure_recorded(job_dir: Path, started: float, log_failure: bool = True) -> Iterator[None]:
    """Write ``failed`` (or ``interrupted``, on Ctrl-C) with the reason to metrics.json, then re-raise."""
    try:
        yield
    except BaseException as exc:
        metrics = ended_by(exc, wall_seconds=time.perf_counter() - started)
        write_metrics(job_dir, metrics)
        if log_failure:
            log.error("%s: %s", metrics.status, metrics.reason)
        raise


def end_job(cfg: DictConfig, job_dir: Path, metrics: Metrics, wall_seconds: float) -> float | tuple[float, ...]:
    """Write the finished job's metrics.json, log its result line; returns its objective."""
    metrics.wall_seconds = wall_seconds
    write_metrics(job_dir, metrics)
    log.info(
        "%s: best val_acc %.4f (epoch %d)  final val_acc %.4f  test_acc %.4f  %.1fs  -> %s",
        metrics.status, metrics.best_val_acc, metrics.best_epoch, metrics.val_acc,
        metrics.test_acc, metrics.wall_seconds, job_dir,
    )
    sweeplab.trial.finish(metrics.status, metrics.reason)  # in an Optuna study, a pruned job raises TrialPruned
    return objective_value(metrics, cfg.objective)


def train(cfg: DictConfig, job_dir: Path, progress_bars: bool, trackers: Callback | None = None) -> Metrics:
    """The run itself; returns the metrics.json contents (without wall time). ``trackers``: the
    logger group's, given every epoch."""
    # set-up
    device, splits = set_up(cfg)
    model = build_model(cfg, device, splits)
    optimizer = build_optimizer(cfg.optimizer, model.parameters(), device)
    schedule = build_schedule(
        cfg.scheduler, optimizer, batches_per_epoch(len(splits.train_y), cfg.batch_size, cfg.drop_last)
    )
    loss_fn = loss_function(cfg.model.get("output", "logits"))
    log_setup(model, device, type(optimizer).__name__, splits)
    # resume: with checkpoint=true, an unfinished run of this config in job_dir continues where it stopped
    config = fingerprint(cfg)
    result = (restore(job_dir, config, model, optimizer, schedule) if cfg.checkpoint else None) or FitResult()
    callbacks = job_callbacks(cfg, job_dir, progress_bars, result.history)
    if trackers is not None:
        for record in result.history:  # a resumed run's earlier epochs, so its tracked run is whole
            trackers.on_epoch_end(record)
        # first: the callbacks that stop training (early stopping, pruning) end an epoch's round
        callbacks.insert(0, trackers)
    checkpoint = Checkpoint(job_dir, config, model, optimizer, schedule, result) if cfg.checkpoint else None
    if checkpoint is not None:
        callbacks.append(checkpoint)  # last: an epoch a callback ends is saved only as finished, below

    # fit
    with logging_redirect_tqdm() if progress_bars else contextlib.nullcontext():
        result = fit(model, optimizer, loss_fn, splits, epochs=cfg.epochs, batch_size=cfg.batch_size,
                     drop_last=cfg.drop_last, seed=cfg.seed, eval_batch_size=cfg.eval_batch_size,
                     schedule=schedule, grad_clip=cfg.grad_clip, callbacks=callbacks, resume_from=result)
    if checkpoint is not None:
        checkpoint.save(finished=True)
    return final_metrics(cfg, job_dir, model, loss_fn, splits, result, device)


def set_up(cfg: DictConfig) -> tuple[torch.device, Splits]:
    """The process-wide part of a run: allocator, device, torch threads, data."""
    reuse_freed_memory()
    device = resolve_device(cfg.device)
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    return device, load_splits(cfg.data, device)


def build_model(cfg: DictConfig, device: torch.device, splits: Splits) -> nn.Module:
    """The job's network with its initial weights (drawn after ``torch.manual_seed(cfg.seed)``),
    checked by one forward pass on the data before any training."""
    torch.manual_seed(cfg.seed)
    model = instantiate_model(cfg.model, splits.input_shape, splits.n_classes).to(device)
    check_forward(model, cfg.model, splits.train_x, splits.n_classes)
    return model


def log_setup(model: nn.Module, device: torch.device, optimizer: str, splits: Splits) -> None:
    log.info("model: %s (%d parameters) on %s; %s; train %d, val %d, test %d",
             describe(model), count_parameters(model), device, optimizer,
             len(splits.train_y), len(splits.val_y), len(splits.test_y))


def job_callbacks(
    cfg: DictConfig, job_dir: Path, progress_bars: bool = False, history: Sequence[EpochRecord] = ()
) -> list[Callback]:
    """History file, epoch lines, and as configured: progress bars, early stopping, Optuna pruning.
    ``history``: the epochs a resumed run finished before this process."""
    callbacks: list[Callback] = [HistoryFile(job_dir, history), EpochLog()]
    if progress_bars:
        callbacks.append(ProgressBars())
    if cfg.patience is not None:
        callbacks.append(EarlyStopping(cfg.patience, history))
    if cfg.profile:
        callbacks.append(Profile(job_dir))
    trial = sweeplab.trial.current(job_dir)
    if trial is not None:
        metric = pruning_metric(cfg.objective)
        if metric is not None:
            callbacks.append(OptunaPruning(trial, metric))
        else:
            log.info("pruning off: no per-epoch metric matches objective=%s", cfg.objective)
    return callbacks


def final_metrics(
    cfg: DictConfig, job_dir: Path, model: nn.Module, loss_fn: Any, splits: Splits, result: FitResult,
    device: torch.device,
) -> Metrics:
    """Test ``model`` (its final weights), then the weights of its best validation epoch; returns the
    metrics.json contents (without wall time)."""
    last = result.history[-1]
    test_loss, test_acc = evaluate(model, loss_fn, splits.test_x, splits.test_y, cfg.eval_batch_size)
    model.load_state_dict(result.best_state)
    _, test_acc_at_best_val = evaluate(model, loss_fn, splits.test_x, splits.test_y, cfg.eval_batch_size)
    return Metrics(
        status=result.status,
        reason=result.reason,
        epochs_completed=len(result.history),
        best_epoch=result.best_epoch,
        best_val_acc=result.best_val_acc,
        test_acc_at_best_val=test_acc_at_best_val,
        val_acc=last.val_acc,
        val_loss=last.val_loss,
        test_acc=test_acc,
        test_loss=test_loss,
        train_acc=last.train_acc,
        train_loss=last.train_loss,
        params=count_parameters(model),
        device=str(device),
    )


def pruning_metric(objective: str | ListConfig) -> str | None:
    """The history column a pruner can judge ``objective`` by; None for several objectives or none."""
    if isinstance(objective, ListConfig):
        return None  # Optuna prunes single-objective studies only
    return PER_EPOCH_METRICS.get(objective)


def resolve_device(name: str) -> torch.device:
    """``auto`` picks cuda (a local worker's own GPU where there are several), then mps, then cpu; an
    explicit device must exist."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device(worker_cuda_device(torch.cuda.device_count()))
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise ConfigError(f"device={name!r}: must be auto, cpu, cuda, cuda:N or mps") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device={name!r}: no CUDA device here; use device=auto or device=cpu")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device={name!r}: no MPS device here; use device=auto or device=cpu")
    return device


def objective_value(metrics: Metrics, objective: str | ListConfig) -> float | tuple[float, ...]:
    """The metric(s) named by ``objective``; nan when the run diverged (sweepers record it as failed)."""
    names = list(objective) if isinstance(objective, ListConfig) else [objective]
    values = tuple(
        math.nan if metrics.status == "diverged" else float(getattr(metrics, name)) for name in names
    )
    return values if len(values) > 1 else values[0]
