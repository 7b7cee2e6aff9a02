"""Train a group of same-shape jobs as one stacked model; each member still ends as its own job.

The fused launcher (``hydra/launcher=fused``) decides which jobs form a group and sets up each
member's Hydra job dir; this module does what :func:`sweeplab.task.run` does, for K jobs at once:
every member gets its own initial weights (``task.build_model``), data order (a generator seeded
with its seed, drawn once per epoch like ``trainer.fit``), optimizer hyperparameters and per-epoch lr
schedule (its own torch scheduler, stepped after each epoch like ``trainer.fit`` steps it), callbacks
(history file, epoch log, early stopping, Optuna pruning, trackers), best state, test and metrics.json,
and with ``checkpoint=true`` the per-epoch checkpoint of its own run, from which a rerun resumes it alone.
"""
from __future__ import annotations

import contextlib
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ContextManager, Mapping, Sequence

import torch
from omegaconf import DictConfig
from torch import nn

from sweeplab.checkpoint import fingerprint, save_finished, save_resumable
from sweeplab.data import Splits
from sweeplab.errors import out_of_memory_named
from sweeplab.model import loss_function
from sweeplab.optim import build_optimizer
from sweeplab.schedule import Schedule, build_schedule
from sweeplab.stacked import StackedMLP, StackedOptimizer
from sweeplab.task import (
    begin_job,
    build_model,
    end_job,
    failure_recorded,
    final_metrics,
    job_callbacks,
    log_setup,
    set_up,
)
from sweeplab.tracking import Trackers, tracked
from sweeplab.trainer import Callback, EpochRecord, FitResult, LossFn, batches_per_epoch, end_epoch


@dataclass
class Member:
    """One job of a fused group. ``scope`` is entered around this job's own work (set-up, each epoch's
    callbacks, the end): the launcher routes log lines to the job's log there, an Optuna sweeper
    makes the job's trial current."""

    cfg: DictConfig
    job_dir: Path
    scope: Callable[[], ContextManager[Any]] = contextlib.nullcontext
    model: nn.Sequential | None = None  # its own network: initial weights, then the final test
    callbacks: list[Callback] = field(default_factory=list)
    trackers: Trackers | None = None  # its logger group's (MLflow, TensorBoard), started with the group
    result: FitResult = field(default_factory=FitResult)
    final_state: dict[str, torch.Tensor] | None = None
    # with a scheduler or checkpoint=true: its own run's torch.optim optimizer, never stepped. Its
    # schedule steps it each epoch, and the stacked optimizer takes the member's lr from its param group;
    # each epoch's checkpoint saves that param group.
    optimizer: torch.optim.Optimizer | None = None
    schedule: Schedule | None = None
    fingerprint: str = ""  # with checkpoint=true: the config's, repeated in each epoch's checkpoint


def run_group(members: Sequence[Member]) -> list[Any]:
    """Train ``members`` as one stacked model; returns each member's objective value.

    A failure of the group is written to every member's metrics.json before it propagates.
    """
    started = time.perf_counter()
    first = members[0].cfg
    with contextlib.ExitStack() as failures:
        for member in members:
            begin_job(member.job_dir)
            failures.enter_context(failure_recorded(member.job_dir, started))
        failures.enter_context(out_of_memory_named(
            f"training {len(members)} members as one stacked model",
            "hydra.launcher.max_memory_mb or hydra.launcher.max_members (fewer members per group)"))
        device, splits = set_up(first)
        loss_fn = loss_function(first.model.output)
        n_batches = batches_per_epoch(len(splits.train_y), first.batch_size, first.drop_last)
        for member in members:
            member.model = build_model(member.cfg, device, splits)
            with member.scope():  # the member's trial is current here: its trackers tag it
                member.trackers = failures.enter_context(tracked(member.cfg, member.job_dir))
                log_setup(member.model, device, f"{member.cfg.optimizer.name} (fused, {len(members)} members)", splits)
                member.callbacks = [member.trackers, *job_callbacks(member.cfg, member.job_dir)]
            if member.cfg.checkpoint or member.cfg.scheduler is not None:
                member.optimizer = build_optimizer(member.cfg.optimizer, member.model.parameters(), device)
                member.schedule = build_schedule(member.cfg.scheduler, member.optimizer, n_batches)
            if member.cfg.checkpoint:
                member.fingerprint = fingerprint(member.cfg)
        fit_members(members, splits, loss_fn, first)
        metrics = []
        for member in members:
            member.model.load_state_dict(member.final_state)
            if member.cfg.checkpoint:
                save_finished(member.job_dir, member.cfg, member.model, member.result)
            metrics.append(final_metrics(member.cfg, member.job_dir, member.model, loss_fn, splits,
                                         member.result, device))
    share = (time.perf_counter() - started) / len(members)  # each member's share of the group's time
    values = []
    for member, member_metrics in zip(members, metrics, strict=True):
        with member.scope():
            member_metrics.wall_seconds = share
            member.trackers.finish(member_metrics)
            values.append(end_job(member.cfg, member.job_dir, member_metrics, share))
    return values


def fit_members(members: Sequence[Member], splits: Splits, loss_fn: LossFn, shared: DictConfig) -> None:
    """Train until each member's epochs end, a callback stops it, or its loss diverges; a stopped
    member leaves the stack and the others go on. ``shared`` holds the keys all members share."""
    stacked = StackedMLP([m.model for m in members], [m.cfg.model.dropout for m in members])
    optimizer = StackedOptimizer(stacked.parameters(), [m.cfg.optimizer for m in members])
    generators = {seed: torch.Generator().manual_seed(seed) for seed in sorted({m.cfg.seed for m in members})}
    n_batches = batches_per_epoch(len(splits.train_y), shared.batch_size, shared.drop_last)
    if n_batches == 0:
        raise ValueError(
            f"batch_size={shared.batch_size} with drop_last leaves no batch of {len(splits.train_y)} samples")
    active = list(members)
    for callback in (c for m in members for c in m.callbacks):
        callback.on_train_start(shared.epochs, n_batches)
    try:
        for epoch in range(1, shared.epochs + 1):
            tic = time.perf_counter()
            lrs = [hyperparameters(m)["lr"] for m in active]  # at the epoch's start, as trainer.fit records it
            # each member's data order, drawn as its own run draws it: once per seed, shared by its members
            by_seed = {seed: torch.randperm(len(splits.train_y), generator=generators[seed])
                       for seed in {m.cfg.seed for m in active}}
            orders = torch.stack([by_seed[m.cfg.seed] for m in active]).to(splits.train_x.device)
            train_loss, train_acc = train_one_epoch(stacked, optimizer, splits.train_x, splits.train_y, orders,
                                                    batch_size=shared.batch_size, drop_last=shared.drop_last)
            for member in active:  # as trainer.fit keeps it: where the next epoch's draw starts
                member.result.data_order = generators[member.cfg.seed].get_state()
            scheduled = [m for m in active if m.schedule is not None]
            for member in scheduled:  # per-epoch schedules step here, as in trainer.fit
                step_schedule(member.schedule)
            if scheduled:
                optimizer.set_hyperparameters([hyperparameters(m) for m in active])
            val_loss, val_acc = evaluate(stacked, loss_fn, splits.val_x, splits.val_y, shared.eval_batch_size)
            seconds = (time.perf_counter() - tic) / len(active)

            stopped = []
            for k, member in enumerate(active):
                record = EpochRecord(epoch, train_loss[k], train_acc[k], val_loss[k], val_acc[k], lrs[k], seconds)
                with member.scope():
                    stop = end_epoch(member.result, record, lambda k=k: stacked.member_state(k), member.callbacks)
                    if member.cfg.checkpoint:
                        save_member_checkpoint(member, k, stacked, optimizer)
                if stop is not None or epoch == shared.epochs:
                    member.final_state = stacked.member_state(k)
                    stopped.append(k)
            kept = [k for k in range(len(active)) if k not in stopped]
            active = [active[k] for k in kept]
            if not active:
                break
            if stopped:
                index = torch.tensor(kept, device=splits.train_x.device)
                stacked.keep(index)
                optimizer.keep(index, stacked.parameters())
    finally:
        for callback in (c for m in members for c in m.callbacks):
            callback.on_train_end()


def step_schedule(schedule: Schedule) -> None:
    """Step a member's schedule. Its torch optimizer never steps (the stacked optimizer takes the
    member's steps), so torch's warning that a scheduler stepped before its optimizer does not apply."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", r"Detected call of `lr_scheduler\.step\(\)` before", UserWarning)
        schedule.scheduler.step()


def hyperparameters(member: Member) -> Mapping[str, Any]:
    """The member's optimizer hyperparameters now, under torch.optim's names: the param group its
    schedule steps, or without a schedule its ``optimizer`` config."""
    return member.optimizer.param_groups[0] if member.schedule is not None else member.cfg.optimizer


@torch.inference_mode()  # no autograd anywhere in the stacked step: torch skips its bookkeeping per op
def train_one_epoch(
    stacked: StackedMLP, optimizer: StackedOptimizer, x: torch.Tensor, y: torch.Tensor, orders: torch.Tensor,
    *, batch_size: int, drop_last: bool,
) -> tuple[list[float], list[float]]:
    """One pass for every member in its own order (row k of ``orders``, K x N, is member k's).
    Per-member mean loss and accuracy (the model's own loss: see ``StackedMLP.log_probs_and_grad``)."""
    stacked.training = True
    n_members, n = orders.shape
    end = n - n % batch_size if drop_last else n
    # what multiplies the gradient of each member's summed loss: 1 / batch, or for plain SGD, whose
    # step the backward pass takes, lr / batch (one per batch size: the last batch may be short)
    grad_scales = {size: (optimizer.lr if optimizer.plain_sgd else 1.0) / size
                   for size in {batch_size, end % batch_size or batch_size}}
    log_prob_sum = torch.zeros(n_members, 1, device=x.device)
    correct = torch.zeros(n_members, dtype=torch.long, device=x.device)
    for start in range(0, end, batch_size):
        # one gather of every member's rows: members that share a seed get the same rows, but
        # gathering them again costs less than copying them from one gather (measured, 2 threads)
        idx = orders[:, start : start + batch_size].flatten()
        xb = x.index_select(0, idx).view(n_members, -1, x.shape[1])
        yb = y.index_select(0, idx).view(n_members, -1)
        # forward, backward, update: each member's gradient is that of its own mean loss
        out = stacked(xb)
        log_probs, grad = stacked.log_probs_and_grad(out, yb, grad_scales[yb.shape[1]])
        if optimizer.plain_sgd:
            stacked.backward(grad, sgd_step=True)
        else:
            stacked.backward(grad)
            optimizer.step()
        # running sums stay on the device: no host sync per batch
        log_prob_sum += log_probs.sum(dim=1)
        correct += (out.argmax(dim=2) == yb).sum(dim=1)
    return (-log_prob_sum.double().squeeze(1) / end).tolist(), (correct.double() / end).tolist()


@torch.no_grad()
def evaluate(
    stacked: StackedMLP, loss_fn: LossFn, x: torch.Tensor, y: torch.Tensor, batch_size: int
) -> tuple[list[float], list[float]]:
    """Per-member mean loss and accuracy on (x, y), every member seeing the same batches."""
    stacked.training = False
    loss_sum, correct = 0.0, 0
    for start in range(0, len(y), batch_size):
        out = stacked(x[start : start + batch_size])
        yb = y[start : start + batch_size].expand(out.shape[0], -1)
        losses = loss_fn(out.flatten(0, 1), yb.flatten(), reduction="none").view(out.shape[0], -1)
        loss_sum = loss_sum + losses.sum(dim=1).double()
        correct = correct + (out.argmax(dim=2) == yb).sum(dim=1)
    return (loss_sum / len(y)).tolist(), (correct.double() / len(y)).tolist()


def save_member_checkpoint(member: Member, k: int, stacked: StackedMLP, optimizer: StackedOptimizer) -> None:
    """Member k's per-epoch checkpoint as its own unfused run writes it (``checkpoint.Checkpoint``), with
    its model's and its torch.optim optimizer's ``state_dict``: a rerun resumes it alone, through the task."""
    by_name = optimizer.member_state(k, stacked)
    state = {index: by_name[name] for index, (name, _) in enumerate(member.model.named_parameters()) if name in by_name}
    scheduler = None if member.schedule is None else member.schedule.scheduler.state_dict()
    save_resumable(member.job_dir, member.fingerprint, False, stacked.member_state(k),
                   {"state": state, "param_groups": member.optimizer.state_dict()["param_groups"]}, scheduler,
                   member.result)
