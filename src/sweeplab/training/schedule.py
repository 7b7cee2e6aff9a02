"""Learning-rate schedules from the ``scheduler`` group: a ``_partial_`` torch scheduler and when it steps.

``interval`` (ours, not the scheduler's) says whether it steps after every batch (``step``) or after
every epoch (``epoch``, the default). A scheduler whose signature takes ``steps_per_epoch``
(OneCycleLR, :func:`warmup_cosine`) gets it from the run.
"""
from __future__ import annotations

import inspect
import math
from dataclasses import dataclass

import torch
from omegaconf import DictConfig
from torch.optim.lr_scheduler import LambdaLR, LRScheduler

from sweeplab import targets
from sweeplab.config import SCHEDULER_OURS


@dataclass
class Schedule:
    scheduler: LRScheduler
    per_batch: bool  # step after every optimizer step, else after every epoch


def build_schedule(cfg: DictConfig | None, optimizer: torch.optim.Optimizer, steps_per_epoch: int) -> Schedule | None:
    """The ``scheduler`` group's schedule for ``optimizer``; None for ``scheduler=none``."""
    if cfg is None:
        return None
    factory = targets.build("scheduler", cfg, SCHEDULER_OURS)
    wanted = inspect.signature(factory).parameters
    given = {"steps_per_epoch": steps_per_epoch} if "steps_per_epoch" in wanted else {}
    return Schedule(factory(optimizer, **given), per_batch=cfg.get("interval", "epoch") == "step")


def warmup_cosine(
    optimizer: torch.optim.Optimizer, *, warmup_epochs: int, epochs: int, steps_per_epoch: int,
    min_lr_factor: float = 0.0,
) -> LambdaLR:
    """Linear warm-up over ``warmup_epochs`` (from lr/steps to lr), then cosine decay to
    ``min_lr_factor`` x lr at the last step. Stepped per batch, so the warm-up is smooth."""
    warmup, total = warmup_epochs * steps_per_epoch, epochs * steps_per_epoch

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return min_lr_factor + (1 - min_lr_factor) * 0.5 * (1 + math.cos(math.pi * progress))

    return LambdaLR(optimizer, factor)
