"""The epoch driver and the single-model step engine.

:func:`fit_members` is the one epoch loop, for one model or a stack of K: each member's data order (a
per-epoch permutation of its seed), its per-epoch lr schedule, validation, divergence, its best
state and its callbacks (history file, epoch lines, early stopping, Optuna pruning, checkpoints,
trackers) are done here, once. What trains is an :class:`Engine`: :class:`ModelEngine` (one
``nn.Module`` with its ``torch.optim`` optimizer, autograd) or ``sweeplab.fused.engine.StackedEngine``
(K same-shape MLPs as one stacked model). Every per-epoch number passes through one point,
``Callback.on_epoch_end``.
"""
from __future__ import annotations

import contextlib
import copy
import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, ContextManager, Protocol, Sequence

import torch
from torch import nn

from sweeplab.training.data import Splits
from sweeplab.training.schedule import Schedule

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
    best_state: dict[str, torch.Tensor] | None = None  # weights of the best epoch that did not diverge
    data_order: torch.Tensor | None = None  # the data-order generator's state after the last epoch
    final_state: dict[str, torch.Tensor] | None = None  # the last weights; None when they diverged


class Engine(Protocol):
    """What trains K members (K = 1 for one model). Members are numbered 0..K-1; :meth:`drop` removes
    stopped ones, and every per-member list an engine returns follows the members still in it, in order."""

    def train_epoch(self, x: torch.Tensor, y: torch.Tensor, orders: torch.Tensor, batch_size: int,
                    drop_last: bool, on_batch_end: Callable[[], None] | None) -> tuple[list[float], list[float]]:
        """One pass over (x, y), member i in the order ``orders[i]``; each one's mean loss and accuracy."""

    def evaluate(self, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> tuple[list[float], list[float]]:
        """Each member's mean loss and accuracy on (x, y)."""

    def weights(self, k: int) -> dict[str, torch.Tensor]:
        """Member k's weights, a copy, as the ``state_dict`` of its own model."""

    def optimizer_state(self, k: int) -> dict[str, Any]:
        """Member k's optimizer state as the ``state_dict`` of its own ``torch.optim`` optimizer."""

    def rng_state(self, k: int) -> torch.Tensor:
        """The random state member k's checkpoint saves, as ``torch.get_rng_state()`` of its run alone
        (where its dropout draws)."""

    def hyperparameters_changed(self) -> None:
        """The members' lr schedules stepped their optimizers' param groups."""

    def drop(self, members: Sequence[int]) -> None:
        """``members`` stopped: leave them out from now on."""


@dataclass
class Member:
    """What the driver keeps for one member: its seed (data order), its own ``torch.optim`` optimizer
    (whose param group holds its lr, stepped by ``schedule``), its callbacks and result. ``scope`` is
    entered around its callbacks (a fused member's log file and Optuna trial)."""

    seed: int
    optimizer: torch.optim.Optimizer  # or what holds its param groups (``sweeplab.fused.engine.Hyperparameters``)
    schedule: Schedule | None = None
    callbacks: list[Callback] = field(default_factory=list)
    result: FitResult = field(default_factory=FitResult)
    diverge_above: float | None = None  # a mean train loss above this ends training as diverged
    scope: Callable[[], ContextManager[Any]] = contextlib.nullcontext


def train_one_epoch(
    model: nn.Module,
    loss_fn: LossFn,
    x: torch.Tensor,
    y: torch.Tensor,
    order: torch.Tensor,
    *,
    batch_size: int,
    drop_last: bool,
    update: Callable[[], None],
    zero_grad: Callable[..., None],
    on_batch_end: Callable[[], None] | None,
) -> tuple[float, float]:
    """One pass over (x, y) in ``order``; returns mean train loss and accuracy."""
    model.train()
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
        zero_grad(set_to_none=True)
        loss.backward()
        update()
        # running sums stay on the device: no host sync per batch
        loss_sum += loss.detach() * len(yb)
        correct += (out.argmax(dim=1) == yb).sum()
        if on_batch_end is not None:
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


class ModelEngine:
    """One ``nn.Module`` trained by its ``torch.optim`` optimizer with autograd (any model, any
    optimizer, gradient clipping, per-batch lr schedules): a stack of one for :func:`fit_members`."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, loss_fn: LossFn,
                 grad_clip: float | None = None, schedule: Schedule | None = None):
        self.model, self.optimizer, self.loss_fn = model, optimizer, loss_fn
        self.update = optimizer_update(optimizer, grad_clip, schedule)

    def train_epoch(self, x: torch.Tensor, y: torch.Tensor, orders: torch.Tensor, batch_size: int,
                    drop_last: bool, on_batch_end: Callable[[], None] | None) -> tuple[list[float], list[float]]:
        loss, acc = train_one_epoch(self.model, self.loss_fn, x, y, orders[0], batch_size=batch_size,
                                    drop_last=drop_last, update=self.update, zero_grad=self.optimizer.zero_grad,
                                    on_batch_end=on_batch_end)
        return [loss], [acc]

    def evaluate(self, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> tuple[list[float], list[float]]:
        loss, acc = evaluate(self.model, self.loss_fn, x, y, batch_size)
        return [loss], [acc]

    def weights(self, k: int) -> dict[str, torch.Tensor]:
        return copy.deepcopy(self.model.state_dict())

    def optimizer_state(self, k: int) -> dict[str, Any]:
        return self.optimizer.state_dict()

    def rng_state(self, k: int) -> torch.Tensor:
        return torch.get_rng_state()

    def hyperparameters_changed(self) -> None:
        pass  # torch.optim reads its param groups at every step

    def drop(self, members: Sequence[int]) -> None:
        pass  # its only member stopped: the driver's loop ends


def divergence(record: EpochRecord, diverge_above: float | None) -> str | None:
    """Why the epoch of ``record`` diverged: a loss that is no longer finite, or a mean train loss
    above ``diverge_above``; None when it did not."""
    for name, loss in (("train", record.train_loss), ("val", record.val_loss)):
        if not math.isfinite(loss):
            return f"{name} loss became {loss} in epoch {record.epoch}"
    if diverge_above is not None and record.train_loss > diverge_above:
        return f"train loss {record.train_loss:.4g} in epoch {record.epoch} is above diverge_above={diverge_above:g}"
    return None


def end_epoch(
    result: FitResult, record: EpochRecord, state: Callable[[], dict[str, torch.Tensor]],
    callbacks: Sequence[Callback], diverge_above: float | None = None,
) -> StopTraining | None:
    """Add ``record`` to ``result``, keep ``state()`` if it is the best epoch, ask the callbacks.

    Returns why training must stop (a callback's verdict, or divergence), if it must; ``result`` then
    holds that status. A diverged epoch is never the best one, and its status is set before the
    callbacks see it: the checkpoint does not save its weights.
    """
    result.history.append(record)
    diverged = divergence(record, diverge_above)
    if diverged is not None:
        result.status, result.reason = "diverged", diverged
    elif not record.val_acc <= result.best_val_acc:  # also true while best is still nan
        result.best_epoch, result.best_val_acc = record.epoch, record.val_acc
        result.best_state = state()
    stop = None
    for callback in callbacks:  # each sees the epoch even after another has said stop (pruning reports it)
        try:
            callback.on_epoch_end(record)
        except StopTraining as exc:
            stop = stop or exc
    if diverged is not None:
        return StopTraining("diverged", diverged)
    if stop is not None:
        result.status, result.reason = stop.status, stop.reason
    return stop


def batches_per_epoch(n: int, batch_size: int, drop_last: bool) -> int:
    return n // batch_size if drop_last else math.ceil(n / batch_size)


def step_epoch_schedules(members: Sequence[Member]) -> bool:
    """Step the per-epoch lr schedules of ``members``; True if any stepped. A stacked member's own
    optimizer never steps (the stacked one takes its steps), so torch's warning that a scheduler
    stepped before its optimizer does not apply to it."""
    scheduled = [m.schedule for m in members if m.schedule is not None and not m.schedule.per_batch]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", r"Detected call of `lr_scheduler\.step\(\)` before", UserWarning)
        for schedule in scheduled:
            schedule.scheduler.step()
    return bool(scheduled)


def batch_hook(callbacks: Sequence[Callback]) -> Callable[[], None] | None:
    """The callbacks' per-batch hook, or None when none has one (no call per batch then)."""
    hooks = [c.on_batch_end for c in callbacks if type(c).on_batch_end is not Callback.on_batch_end]
    if not hooks:
        return None

    def on_batch_end() -> None:
        for hook in hooks:
            hook()

    return on_batch_end


def fit_members(
    engine: Engine, members: Sequence[Member], splits: Splits, *, epochs: int, batch_size: int, drop_last: bool,
    eval_batch_size: int,
) -> None:
    """Train every member for ``epochs`` (or until a callback stops it, or it diverges); a stopped
    member leaves the engine and the others go on. Each member's ``result`` holds its run.

    Members continue after the epochs their ``result`` holds (a checkpoint's), all from the same one.
    The lr in the history is the one at the epoch's start: every batch's under a per-epoch
    schedule, the first batch's under a per-batch one.
    """
    n = len(splits.train_y)
    n_batches = batches_per_epoch(n, batch_size, drop_last)
    if n_batches == 0:
        raise ValueError(f"batch_size={batch_size} with drop_last leaves no batch of {n} samples")
    done = {len(m.result.history) for m in members}
    if len(done) > 1:
        raise ValueError(f"members resume after different epochs ({sorted(done)}): they cannot train together")
    generators = []
    for member in members:
        generators.append(torch.Generator().manual_seed(member.seed))
        if member.result.data_order is not None:
            generators[-1].set_state(member.result.data_order)
    callbacks = [c for m in members for c in m.callbacks]
    on_batch_end = batch_hook(callbacks)

    for callback in callbacks:
        callback.on_train_start(epochs, n_batches)
    active = list(range(len(members)))
    try:
        for epoch in range(done.pop() + 1, epochs + 1):
            tic = time.perf_counter()
            lrs = [members[k].optimizer.param_groups[0]["lr"] for k in active]
            # train: each member in its own data order, drawn as a run of its seed alone draws it
            orders = torch.stack([torch.randperm(n, generator=generators[k]) for k in active])
            train_loss, train_acc = engine.train_epoch(splits.train_x, splits.train_y, orders.to(splits.train_x.device),
                                                       batch_size, drop_last, on_batch_end)
            for k in active:
                members[k].result.data_order = generators[k].get_state()
            if step_epoch_schedules([members[k] for k in active]):
                engine.hyperparameters_changed()
            # evaluate
            val_loss, val_acc = engine.evaluate(splits.val_x, splits.val_y, eval_batch_size)
            seconds = (time.perf_counter() - tic) / len(active)
            # each member's epoch ends: best state, callbacks, termination
            stopped = []
            for i, k in enumerate(active):
                member = members[k]
                record = EpochRecord(epoch, train_loss[i], train_acc[i], val_loss[i], val_acc[i], lrs[i], seconds)
                with member.scope():
                    stop = end_epoch(member.result, record, lambda k=k: engine.weights(k), member.callbacks,
                                     member.diverge_above)
                if stop is not None or epoch == epochs:
                    member.result.final_state = None if stop and stop.status == "diverged" else engine.weights(k)
                    stopped.append(k)
            active = [k for k in active if k not in stopped]
            if not active:
                break
            if stopped:
                engine.drop(stopped)
    finally:
        for callback in callbacks:
            callback.on_train_end()


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
    diverge_above: float | None = None,
) -> FitResult:
    """:func:`fit_members` for one model (a stack of one); returns its result."""
    member = Member(seed, optimizer, schedule, list(callbacks), resume_from or FitResult(), diverge_above)
    fit_members(ModelEngine(model, optimizer, loss_fn, grad_clip, schedule), [member], splits, epochs=epochs,
                batch_size=batch_size, drop_last=drop_last, eval_batch_size=eval_batch_size)
    return member.result
