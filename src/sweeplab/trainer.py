"""The training loop: per-epoch permutation, batches as tensor slices, evaluation, callbacks.

Every per-epoch number passes through one point, ``Callback.on_epoch_end``: the history file, the
progress line, early stopping and (in Optuna studies) report-and-prune all hang there.
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch
from torch import nn

from sweeplab.data import Splits
from sweeplab.schedule import Schedule

LossFn = Callable[..., torch.Tensor]


@dataclass
class EpochRecord:
    """One row of history.csv."""

    epoch: int
    train_loss: float
    train_acc: float
    val_loss: float
    val_acc: float
    lr: float
    seconds: float


class StopTraining(Exception):
    """Raised by a callback to end training after this epoch; ``status`` says why (ok, pruned)."""

    def __init__(self, status: str, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


class Callback:
    """Hooks the loop calls; override what you need."""

    def on_train_start(self, epochs: int, batches_per_epoch: int) -> None: ...

    def on_batch_end(self) -> None: ...

    def on_epoch_end(self, record: EpochRecord) -> None: ...

    def on_train_end(self) -> None: ...


@dataclass
class FitResult:
    history: list[EpochRecord] = field(default_factory=list)
    status: str = "ok"  # ok | diverged | pruned
    reason: str | None = None
    best_epoch: int = 0
    best_val_acc: float = float("nan")
    best_state: dict[str, torch.Tensor] | None = None
    data_order: torch.Tensor | None = None  # the data-order generator's state after the last epoch


def train_one_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_fn: LossFn,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    batch_size: int,
    drop_last: bool,
    generator: torch.Generator,
    update: Callable[[], None],
    on_batch_end: Callable[[], None],
) -> tuple[float, float]:
    """One pass over (x, y) in a fresh random order; returns mean train loss and accuracy."""
    model.train()
    order = torch.randperm(len(y), generator=generator).to(x.device)
    end = len(y) - len(y) % batch_size if drop_last else len(y)
    loss_sum = torch.zeros((), device=x.device)
    correct = torch.zeros((), dtype=torch.long, device=x.device)
    for start in range(0, end, batch_size):
        # a batch is an index slice of this epoch's permutation (one small gather, no per-sample work)
        idx = order[start : start + batch_size]
        xb, yb = x.index_select(0, idx), y.index_select(0, idx)
        # forward, backward, update
        out = model(xb)
        loss = loss_fn(out, yb)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        update()
        # running sums stay on the device: no host sync per batch
        loss_sum += loss.detach() * len(yb)
        correct += (out.argmax(dim=1) == yb).sum()
        on_batch_end()
    return loss_sum.item() / end, correct.item() / end


@torch.no_grad()
def evaluate(
    model: nn.Module, loss_fn: LossFn, x: torch.Tensor, y: torch.Tensor, batch_size: int
) -> tuple[float, float]:
    """Mean loss and accuracy of ``model`` on (x, y), in eval mode."""
    model.eval()
    loss_sum, correct = 0.0, 0
    for start in range(0, len(y), batch_size):
        out = model(x[start : start + batch_size])
        yb = y[start : start + batch_size]
        loss_sum += loss_fn(out, yb, reduction="sum").item()
        correct += (out.argmax(dim=1) == yb).sum().item()
    return loss_sum / len(y), correct / len(y)


def optimizer_update(
    optimizer: torch.optim.Optimizer, grad_clip: float | None, schedule: Schedule | None
) -> Callable[[], None]:
    """What follows each backward pass: clip, step, per-batch schedule step. Without clipping or a
    per-batch schedule it is ``optimizer.step`` itself, so the plain path does no extra work."""
    batch_scheduler = schedule.scheduler if schedule is not None and schedule.per_batch else None
    if grad_clip is None and batch_scheduler is None:
        return optimizer.step
    params = [p for group in optimizer.param_groups for p in group["params"]]

    def update() -> None:
        if grad_clip is not None:
            nn.utils.clip_grad_norm_(params, grad_clip)
        optimizer.step()
        if batch_scheduler is not None:
            batch_scheduler.step()

    return update


def end_epoch(
    result: FitResult, record: EpochRecord, state: Callable[[], dict[str, torch.Tensor]],
    callbacks: Sequence[Callback],
) -> StopTraining | None:
    """Add ``record`` to ``result``, keep ``state()`` if it is the best epoch, ask the callbacks.

    Returns why training must stop (a callback's verdict, or a loss that is no longer finite), if it
    must; ``result`` then holds that status. The fused loop ends each member's epoch here too.
    """
    result.history.append(record)
    if not record.val_acc <= result.best_val_acc:  # also true while best is still nan
        result.best_epoch, result.best_val_acc = record.epoch, record.val_acc
        result.best_state = state()
    stop = None
    for callback in callbacks:  # each sees the epoch even after another has said stop (pruning reports it)
        try:
            callback.on_epoch_end(record)
        except StopTraining as exc:
            stop = stop or exc
    if not math.isfinite(record.train_loss):
        stop = StopTraining("diverged", f"train loss became {record.train_loss} in epoch {record.epoch}")
    if stop is not None:
        result.status, result.reason = stop.status, stop.reason
    return stop


def batches_per_epoch(n: int, batch_size: int, drop_last: bool) -> int:
    return n // batch_size if drop_last else math.ceil(n / batch_size)


def fit(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_fn: LossFn,
    splits: Splits,
    *,
    epochs: int,
    batch_size: int,
    drop_last: bool,
    seed: int,
    eval_batch_size: int,
    schedule: Schedule | None = None,
    grad_clip: float | None = None,
    callbacks: Sequence[Callback] = (),
    resume_from: FitResult | None = None,
) -> FitResult:
    """Train for ``epochs`` (or until a callback stops it, or the loss stops being finite).

    The lr in the history is the one at the epoch's start: every batch's under a per-epoch
    schedule, the first batch's under a per-batch one.
    """
    # resume_from: the epochs a checkpoint restored; the loop continues after them, in place
    result = resume_from if resume_from is not None else FitResult()
    generator = torch.Generator().manual_seed(seed)
    if result.data_order is not None:
        generator.set_state(result.data_order)
    n_batches = batches_per_epoch(len(splits.train_y), batch_size, drop_last)
    if n_batches == 0:
        raise ValueError(f"batch_size={batch_size} with drop_last leaves no batch of {len(splits.train_y)} samples")

    update = optimizer_update(optimizer, grad_clip, schedule)

    def on_batch_end() -> None:
        for callback in callbacks:
            callback.on_batch_end()

    for callback in callbacks:
        callback.on_train_start(epochs, n_batches)
    try:
        for epoch in range(len(result.history) + 1, epochs + 1):
            tic, lr = time.perf_counter(), optimizer.param_groups[0]["lr"]
            train_loss, train_acc = train_one_epoch(
                model, optimizer, loss_fn, splits.train_x, splits.train_y, batch_size=batch_size,
                drop_last=drop_last, generator=generator, update=update, on_batch_end=on_batch_end,
            )
            result.data_order = generator.get_state()
            if schedule is not None and not schedule.per_batch:
                schedule.scheduler.step()
            val_loss, val_acc = evaluate(model, loss_fn, splits.val_x, splits.val_y, eval_batch_size)
            record = EpochRecord(epoch, train_loss, train_acc, val_loss, val_acc, lr, time.perf_counter() - tic)
            if end_epoch(result, record, lambda: copy.deepcopy(model.state_dict()), callbacks) is not None:
                break
    finally:
        for callback in callbacks:
            callback.on_train_end()
    return result
