"""The task function: validate -> data -> model -> fit -> test -> files; returns the objective.

``train.py`` at the top of the repo hands Hydra's composed config to :func:`main`. Tests call
:func:`run` with a config from ``compose`` and a temporary job dir.
"""
from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ContextManager, Iterator, Optional, Sequence

import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, ListConfig
from torch import nn
from tqdm.contrib.logging import logging_redirect_tqdm

import sweeplab.job.trial
from sweeplab import sweeplab_task, targets
from sweeplab.config import validate
from sweeplab.errors import ConfigError, FileError, out_of_memory_named
from sweeplab.fused.engine import StackedEngine, dropout_generator, member_optimizer
from sweeplab.job.interrupts import sigterm_as_keyboard_interrupt
from sweeplab.job.tracking import tracked
from sweeplab.job.workers import worker_cuda_device
from sweeplab.jobfiles import METRICS, PER_EPOCH_METRICS, Metrics, ended_by, objective_value, write_metrics
from sweeplab.training.allocator import reuse_freed_memory
from sweeplab.training.callbacks import EarlyStopping, EpochLog, HistoryFile, OptunaPruning, Profile, ProgressBars
from sweeplab.training.checkpoint import Checkpoint, fingerprint, restore, save_finished
from sweeplab.training.data import Splits, load_splits
from sweeplab.training.model import check_forward, count_parameters, describe, instantiate_model, loss_function
from sweeplab.training.optim import build_optimizer
from sweeplab.training.schedule import build_schedule
from sweeplab.training.trainer import (
    Callback,
    Engine,
    EpochRecord,
    FitResult,
    Member,
    ModelEngine,
    batches_per_epoch,
    evaluate,
    fit_members,
)

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


@dataclass
class Job:
    """One job to run: its config and dir. ``scope`` is entered around the job's own work (set-up,
    each epoch's callbacks, its end): the fused launcher routes log lines to the job's log there, an
    Optuna sweeper makes the job's trial current."""

    cfg: DictConfig
    job_dir: Path
    scope: Callable[[], ContextManager[Any]] = contextlib.nullcontext
    progress_bars: bool = False
    # its config has passed config.problems() already (the fused launcher's plan checks every member):
    # not checked again, since checking a config costs as much as a member's training on small data
    validated: bool = False


def run(
    cfg: DictConfig, job_dir: Path, progress_bars: bool = False, log_failure: bool = True
) -> float | tuple[float, ...]:
    """Train ``cfg`` into ``job_dir``. Any failure is written to metrics.json before it propagates."""
    return run_jobs([Job(cfg, job_dir, progress_bars=progress_bars)], log_failure)[0]


def run_jobs(jobs: Sequence[Job], log_failure: bool = True) -> list[float | tuple[float, ...]]:
    """A job's whole life, for one job or a fused group (jobs that differ only in what the stacked
    engine takes per member): status ``running``, set-up, model, callbacks, fit, final metrics, end.
    Returns each job's objective. A failure is written to every job's metrics.json before it propagates."""
    started = time.perf_counter()
    with contextlib.ExitStack() as stack:
        for job in jobs:
            begin_job(job.job_dir)
            stack.enter_context(failure_recorded(job.job_dir, started, log_failure))
            with job.scope():
                sweeplab.job.trial.record_job_dir(job.job_dir)
        if len(jobs) > 1:
            stack.enter_context(out_of_memory_named(
                f"training {len(jobs)} members as one stacked model",
                "hydra.launcher.max_memory_mb or hydra.launcher.max_members (fewer members per group)"))
        for job in jobs:
            if not job.validated:
                validate(job.cfg)
        metrics = train(jobs, stack, started)
    return [end_job(job, job_metrics) for job, job_metrics in zip(jobs, metrics, strict=True)]


def begin_job(job_dir: Path) -> None:
    job_dir.mkdir(parents=True, exist_ok=True)
    # who runs it: the report tells a job that is still running from one whose process was killed (kill -9)
    try:
        write_metrics(job_dir, Metrics(status="running", process=f"{socket.gethostname()}:{os.getpid()}"))
    except OSError as exc:
        raise unwritable(exc) from exc


def unwritable(exc: OSError) -> FileError:
    return FileError(f"cannot write {exc.filename}: {exc.strerror}")


@contextlib.contextmanager
def failure_recorded(job_dir: Path, started: float, log_failure: bool = True) -> Iterator[None]:
    """Write ``failed`` (or ``interrupted``, on Ctrl-C) with the reason to metrics.json, then re-raise.

    A file that cannot be written (a full disk) is re-raised as a :class:`FileError`, one line naming
    it; when metrics.json itself cannot be written, one log line says so, and why."""
    try:
        yield
    except BaseException as exc:
        file_error = unwritable(exc) if isinstance(exc, OSError) and exc.filename is not None else None
        metrics = ended_by(file_error or exc, wall_seconds=time.perf_counter() - started)
        try:
            write_metrics(job_dir, metrics)
        except OSError as again:
            log.error("cannot write %s (%s): the job %s: %s", job_dir / METRICS, again.strerror, metrics.status,
                      metrics.reason)
        else:
            if log_failure:
                log.error("%s: %s", metrics.status, metrics.reason)
        if file_error is not None:
            raise file_error from exc
        raise


def end_job(job: Job, metrics: Metrics) -> float | tuple[float, ...]:
    """Write the finished job's metrics.json, log its result line; returns its objective."""
    with job.scope():
        write_metrics(job.job_dir, metrics)
        log.info(
            "%s: best val_acc %.4f (epoch %d)  final val_acc %.4f  test_acc %.4f  %.1fs  -> %s",
            metrics.status, metrics.best_val_acc, metrics.best_epoch, metrics.val_acc,
            metrics.test_acc, metrics.wall_seconds, job.job_dir,
        )
        sweeplab.job.trial.finish(metrics.status, metrics.reason)  # in an Optuna study, a pruned job raises TrialPruned
    return objective_value(metrics, job.cfg.objective)


def train(jobs: Sequence[Job], stack: contextlib.ExitStack, started: float) -> list[Metrics]:
    """Train ``jobs``: one model, or K as one stacked model; returns each one's metrics.json contents.
    ``stack`` holds each job's trackers (the logger group's) open until it ends."""
    # set-up: what a group shares (the fused launcher groups jobs that agree on it) comes from the first job
    shared = jobs[0].cfg
    device, splits = set_up(shared)
    loss_fn = loss_function(shared.model.get("output", "logits"))
    n_batches = batches_per_epoch(len(splits.train_y), shared.batch_size, shared.drop_last)
    models, members, configs, trackers_of, generators = [], [], [], [], []
    built: Optional[dict[str, Callable[[], nn.Module]]] = {} if len(jobs) > 1 else None
    for job in jobs:
        model = build_model(job.cfg, device, splits, built)
        generators.append(dropout_generator(job.cfg.seed, device))  # a fused member's, before anything draws
        optimizer = (build_optimizer(job.cfg.optimizer, model.parameters(), device) if len(jobs) == 1
                     else member_optimizer(job.cfg, model, device))
        schedule = build_schedule(job.cfg.scheduler, optimizer, n_batches)
        with job.scope():  # the job's trial is current here: its trackers tag it, its pruning reports to it
            trackers = stack.enter_context(tracked(job.cfg, job.job_dir))
            # a fused member's optimizer may be its hyperparameters alone: name the class its config builds
            name = type(optimizer).__name__ if len(jobs) == 1 else \
                f"{str(job.cfg.optimizer._target_).rsplit('.', 1)[-1]} (fused, {len(jobs)} members)"
            log_setup(model, device, name, splits)
            # resume: with checkpoint=true, an unfinished run of this config in job_dir continues where it stopped
            configs.append(fingerprint(job.cfg) if job.cfg.checkpoint else "")
            result = (restore(job.job_dir, configs[-1], model, optimizer, schedule) if job.cfg.checkpoint
                      else None) or FitResult()
            for record in result.history:  # a resumed run's earlier epochs, so its tracked run is whole
                trackers.on_epoch_end(record)
            # trackers first: the callbacks that stop training (early stopping, pruning) end an epoch's round
            callbacks = [trackers, *job_callbacks(job.cfg, job.job_dir, job.progress_bars, result.history)]
        models.append(model)
        trackers_of.append(trackers)
        members.append(Member(job.cfg.seed, optimizer, schedule, callbacks, result, job.cfg.diverge_above, job.scope))
    if len(jobs) == 1:
        engine: Engine = ModelEngine(models[0], members[0].optimizer, loss_fn, shared.grad_clip, members[0].schedule)
    else:
        engine = StackedEngine(models, [m.optimizer for m in members], [job.cfg for job in jobs], loss_fn, generators)
    for k, (job, member) in enumerate(zip(jobs, members, strict=True)):
        if job.cfg.checkpoint:  # last: an epoch a callback ends is saved only as finished, below
            member.callbacks.append(Checkpoint(job.job_dir, configs[k], engine, k, member.schedule, member.result))

    # fit
    with logging_redirect_tqdm() if any(job.progress_bars for job in jobs) else contextlib.nullcontext():
        fit_members(engine, members, splits, epochs=shared.epochs, batch_size=shared.batch_size,
                    drop_last=shared.drop_last, eval_batch_size=shared.eval_batch_size)

    # end: test, final metrics; each job's share of the time
    metrics = []
    for job, model, member, config in zip(jobs, models, members, configs, strict=True):
        if job.cfg.checkpoint:
            save_finished(job.job_dir, config, member.result)
        metrics.append(final_metrics(model, loss_fn, splits, member.result, device, job.cfg.eval_batch_size))
    share = (time.perf_counter() - started) / len(jobs)
    for job, trackers, job_metrics in zip(jobs, trackers_of, metrics, strict=True):
        job_metrics.wall_seconds = share
        with job.scope():
            trackers.finish(job_metrics)
    return metrics


def set_up(cfg: DictConfig) -> tuple[torch.device, Splits]:
    """The process-wide part of a run: allocator, device, torch threads, data."""
    reuse_freed_memory()
    device = resolve_device(cfg.device)
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    return device, load_splits(cfg.data, device)


def build_model(
    cfg: DictConfig, device: torch.device, splits: Splits, built: Optional[dict[str, Callable[[], nn.Module]]] = None,
) -> nn.Module:
    """The job's network with its initial weights (drawn after ``torch.manual_seed(cfg.seed)``),
    checked by one forward pass on the data before any training. ``built``: the constructors of the
    model configs built before (by their arguments), to fill: a fused group's members mostly share
    one, and Hydra's ``instantiate`` costs several times what building a small network does."""
    key = "" if built is None else repr(targets.arguments(cfg.model))
    known = None if built is None else built.get(key)
    torch.manual_seed(cfg.seed)
    if known is not None:
        model = known().to(device)
    else:
        model = instantiate_model(cfg.model, splits.input_shape, splits.n_classes).to(device)
        if built is not None:  # the same call, to make later: this target gave a model for these arguments
            built[key] = targets.build("model", cfg.model, input_shape=splits.input_shape,
                                       n_classes=splits.n_classes, _partial_=True)
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
    trial = sweeplab.job.trial.current()
    if trial is not None:
        metric = pruning_metric(cfg.objective)
        if metric is not None:
            callbacks.append(OptunaPruning(trial, metric))
        else:
            log.info("pruning off: no per-epoch metric matches objective=%s", cfg.objective)
    return callbacks


def final_metrics(
    model: nn.Module, loss_fn: Any, splits: Splits, result: FitResult, device: torch.device, eval_batch_size: int,
) -> Metrics:
    """Test the run's final weights, then those of its best validation epoch; returns the
    metrics.json contents (without wall time). Weights that diverged are no result: their numbers
    are nan (written as null), and the best epoch is the best one before."""
    last = result.history[-1]
    nan = float("nan")
    test_loss, test_acc, test_acc_at_best_val = nan, nan, nan
    if result.final_state is not None:
        model.load_state_dict(result.final_state)
        test_loss, test_acc = evaluate(model, loss_fn, splits.test_x, splits.test_y, eval_batch_size)
    if result.best_state is not None:
        model.load_state_dict(result.best_state)
        _, test_acc_at_best_val = evaluate(model, loss_fn, splits.test_x, splits.test_y, eval_batch_size)
    final = result.final_state is not None
    return Metrics(
        status=result.status,
        reason=result.reason,
        epochs_completed=len(result.history),
        best_epoch=result.best_epoch,
        best_val_acc=result.best_val_acc,
        test_acc_at_best_val=test_acc_at_best_val,
        val_acc=last.val_acc if final else nan,
        val_loss=last.val_loss if final else nan,
        test_acc=test_acc,
        test_loss=test_loss,
        train_acc=last.train_acc if final else nan,
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
