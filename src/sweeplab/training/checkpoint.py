"""Per-epoch checkpoints (``checkpoint=true``): a killed job continues from its last finished epoch
and ends with the same history and metrics as a run that never stopped.

At the end of every epoch :class:`Checkpoint` saves, atomically, everything the next epoch depends
on: model, optimizer, lr schedule, the data-order generator, torch's global RNG (dropout), the best
epoch's weights and the history. :func:`restore` is the resume hook: it loads that state into a
freshly built run, or says in one line why it cannot and lets the run start from scratch.
"""
from __future__ import annotations

import copy
import hashlib
import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from sweeplab.jobfiles import CHECKPOINT, save_checkpoint
from sweeplab.training.schedule import Schedule
from sweeplab.training.trainer import Callback, Engine, EpochRecord, FitResult

log = logging.getLogger(__name__)

FORMAT = 1  # bump when the saved keys change: an older checkpoint then starts the run from scratch
# keys that change how a run is shown or how fast it goes, not what it computes
NOT_FINGERPRINTED = ("progress", "threads", "checkpoint", "logger")


def fingerprint(cfg: DictConfig) -> str:
    """A hash of the resolved config, so a checkpoint only resumes the run it was written by."""
    container = OmegaConf.to_container(cfg, resolve=True)
    for key in NOT_FINGERPRINTED:
        container.pop(key, None)
    return hashlib.sha256(OmegaConf.to_yaml(OmegaConf.create(container)).encode()).hexdigest()


class Checkpoint(Callback):
    """Saves member ``k`` of ``engine`` (a single run's only one) after every epoch it ends without
    diverging: a diverged epoch's weights are nothing to resume from. :func:`save_finished` marks the
    end of its run, which a rerun does not resume."""

    def __init__(self, job_dir: Path, config: str, engine: Engine, k: int, schedule: Schedule | None,
                 result: FitResult):
        self.job_dir, self.config, self.engine, self.k = job_dir, config, engine, k
        self.schedule, self.result = schedule, result

    def on_epoch_end(self, record: EpochRecord) -> None:
        if self.result.status == "diverged":
            return
        scheduler = None if self.schedule is None else self.schedule.scheduler.state_dict()
        save_checkpoint(self.job_dir, {
            **weights_and_history(self.config, False, self.engine.weights(self.k), self.result),
            "optimizer": self.engine.optimizer_state(self.k),  # its own torch.optim's state_dict, also when fused
            "scheduler": scheduler,
            "data_order": self.result.data_order,
            "torch_rng": self.engine.rng_state(self.k),  # torch's global RNG (dropout), a fused member's own
        })


def weights_and_history(config: str, finished: bool, model: dict[str, torch.Tensor] | None, result: FitResult
                        ) -> dict[str, Any]:
    """The part of a checkpoint every run writes: the last (``model``) and the best weights, and the history."""
    return {
        "format": FORMAT,
        "config": config,
        "finished": finished,
        "model": model,
        "history": [asdict(record) for record in result.history],
        "best_epoch": result.best_epoch,
        "best_val_acc": result.best_val_acc,
        "best_state": result.best_state,
    }


def save_finished(job_dir: Path, config: str, result: FitResult) -> None:
    """A finished run's checkpoint: its last weights (none when they diverged), its best weights and
    history, without the state to resume from."""
    save_checkpoint(job_dir, weights_and_history(config, True, result.final_state, result))


def resumable_after(job_dir: Path, config: str) -> int | None:
    """The last epoch of the unfinished run of ``config`` saved in ``job_dir``; None if there is none
    to resume (no checkpoint, a finished run's, another config's, or one that cannot be read)."""
    path = job_dir / CHECKPOINT
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # restore() says why in the run's log when the run starts from scratch
        return None
    return len(state["history"]) if _cannot_resume(state, config) is None else None


def restore(job_dir: Path, config: str, model: nn.Module, optimizer: torch.optim.Optimizer,
            schedule: Schedule | None) -> FitResult | None:
    """The unfinished run saved in ``job_dir`` loaded into ``model``, ``optimizer`` and ``schedule``,
    as the :class:`FitResult` to continue; None (and the objects untouched) when there is none to resume."""
    path = job_dir / CHECKPOINT
    if not path.is_file():
        return None
    before = [copy.deepcopy(obj.state_dict()) for obj in _stateful(model, optimizer, schedule)]
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        why_not = _cannot_resume(state, config)
        if why_not is None:
            return _load(state, model, optimizer, schedule)
    except Exception as exc:  # truncated, not a torch file, or state of another shape
        why_not = f"cannot read it ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
    for obj, saved in zip(_stateful(model, optimizer, schedule), before, strict=True):
        obj.load_state_dict(saved)
    log.warning("%s: %s; training from scratch", path, why_not)
    return None


def _cannot_resume(state: Any, config: str) -> str | None:
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        return "not a checkpoint of this version"
    if state["config"] != config:
        return "written by a run of another config"
    if state["finished"]:
        return "its run had finished"
    return None


def _load(state: dict[str, Any], model: nn.Module, optimizer: torch.optim.Optimizer,
          schedule: Schedule | None) -> FitResult:
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    if schedule is not None:
        schedule.scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["torch_rng"])
    device = next(model.parameters()).device
    best_state = {name: tensor.to(device) for name, tensor in state["best_state"].items()}
    history = [EpochRecord(**record) for record in state["history"]]
    log.info("resumed from %s after epoch %d", CHECKPOINT, len(history))
    return FitResult(history=history, best_epoch=state["best_epoch"], best_val_acc=state["best_val_acc"],
                     best_state=best_state, data_order=state["data_order"])


def _stateful(model: nn.Module, optimizer: torch.optim.Optimizer, schedule: Schedule | None) -> list[Any]:
    return [model, optimizer, *([schedule.scheduler] if schedule is not None else [])]
