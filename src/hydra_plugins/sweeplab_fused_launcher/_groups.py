"""Which jobs of a multirun can train as one stacked model, and how many fit in one.

Members of a group may differ only in :data:`MEMBER_KEYS`: values that change numbers, not tensor
shapes or the ops run. Everything else (data, model shape, activation, optimizer kind, batch size,
epochs, device, ...) must be equal, and dropout must be on for all members or off for all.
"""
from __future__ import annotations

import json
import math
import os
from typing import Any, Optional, Sequence

import torch
from omegaconf import DictConfig, OmegaConf

from sweeplab.config import hidden_sizes, problems
from sweeplab.data import IMAGE_SIZE, N_CLASSES
from sweeplab.errors import ConfigError
from sweeplab.stacked import OPTIMIZERS, bytes_per_member

MEMBER_KEYS = (
    "lr", "seed", "patience", "checkpoint", "objective", "progress",
    "optimizer.lr", "optimizer.momentum", "optimizer.alpha", "optimizer.betas", "optimizer.eps",
    "optimizer.weight_decay",
    "model.init_std", "model.dropout",
)
BUILT_IN_MODEL = "sweeplab.model.mlp"
MB = 2**20


def unfusable_reason(cfg: DictConfig) -> Optional[str]:
    """Why the job ``cfg`` (its task config) cannot join a stacked model; None when it can."""
    target = OmegaConf.select(cfg, "model._target_")
    if target not in (None, BUILT_IN_MODEL):
        return f"model._target_={target} (the stacked model is the built-in {BUILT_IN_MODEL})"
    name, target = OmegaConf.select(cfg, "optimizer.name"), OmegaConf.select(cfg, "optimizer._target_")
    if OPTIMIZERS.get(name) != target:
        return f"optimizer {name or target} (fused: the built-in {', '.join(OPTIMIZERS)})"
    scheduler = OmegaConf.select(cfg, "scheduler")
    if scheduler is not None and scheduler.get("interval", "epoch") != "epoch":
        return f"scheduler.interval={scheduler.interval} (fused: schedules that step per epoch)"
    if OmegaConf.select(cfg, "grad_clip") is not None:
        return "grad_clip (fused: no clipping)"
    found = problems(cfg)
    if found:
        return "invalid config: " + "; ".join(found)
    return None


def fusion_key(cfg: DictConfig) -> str:
    """What the members of one group share: the resolved config without :data:`MEMBER_KEYS`."""
    values = flat(cfg)
    for key in MEMBER_KEYS:
        values.pop(key, None)
    values["model.dropout>0"] = cfg.model.dropout > 0  # dropout on and off are different ops
    return json.dumps(values, sort_keys=True, default=str)


def flat(cfg: DictConfig) -> dict[str, Any]:
    """``{"optimizer.lr": 0.1, ...}``: every leaf of the resolved config under its dotted key."""
    out: dict[str, Any] = {}

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, dict) and node:
            for key, value in node.items():
                walk(value, f"{prefix}{key}.")
        else:
            out[prefix[:-1]] = node

    walk(OmegaConf.to_container(cfg, resolve=True), "")
    return out


def differing_keys(cfgs: Sequence[DictConfig]) -> list[str]:
    """The keys whose values differ between ``cfgs``; a group key that follows a top-level short
    name (``optimizer.lr: ${lr}``) is named by the short name only."""
    flats = [flat(cfg) for cfg in cfgs]
    differing = [key for key in flats[0] if len({json.dumps(f.get(key), default=str) for f in flats}) > 1]

    def follows_short_name(key: str) -> bool:
        short = key.rpartition(".")[2]
        return "." in key and short in differing and all(f[key] == f[short] for f in flats)

    return [key for key in differing if not follows_short_name(key)]


def layer_sizes(cfg: DictConfig) -> list[int]:
    return [IMAGE_SIZE, *hidden_sizes(cfg.model), N_CLASSES]


def describe_shape(cfg: DictConfig) -> str:
    """``784-64-10 relu, sgd, batch 32, 2 epochs``: what a group's members share, in short."""
    dropout = ", dropout" if cfg.model.dropout > 0 else ""
    return (f"{'-'.join(map(str, layer_sizes(cfg)))} {cfg.activation.name}{dropout}, {cfg.optimizer.name}, "
            f"batch {cfg.batch_size}, {cfg.epochs} epochs")


def member_bytes(cfg: DictConfig) -> int:
    return bytes_per_member(layer_sizes(cfg), cfg.model.bias, cfg.optimizer.name, cfg.batch_size, cfg.eval_batch_size)


def default_budget_bytes(device: torch.device) -> int:
    """Half the device's free memory: CUDA's free memory, or the RAM the kernel reports available."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return free // 2
    try:
        with open("/proc/meminfo") as meminfo:
            available_kb = next(int(line.split()[1]) for line in meminfo if line.startswith("MemAvailable:"))
        return available_kb * 1024 // 2
    except (OSError, StopIteration):
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2


def chunk_size(cfg: DictConfig, budget_bytes: int, max_members: Optional[int], budget_key: str) -> int:
    """How many members of ``cfg``'s shape one stacked model may hold under the budget."""
    needed = member_bytes(cfg)
    if needed > budget_bytes:
        raise ConfigError(
            f"{budget_key}={budget_bytes // MB}: too small for one member of shape {describe_shape(cfg)}, "
            f"which needs {math.ceil(needed / MB)} MB; raise it or leave it null (half the free memory)"
        )
    return min(budget_bytes // needed, max_members or math.inf)


def split(indices: Sequence[int], size: int) -> list[list[int]]:
    return [list(indices[start : start + size]) for start in range(0, len(indices), size)]
