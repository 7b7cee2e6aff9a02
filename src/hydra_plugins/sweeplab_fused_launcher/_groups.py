"""Which jobs of a multirun can train as one stacked model, and how many fit in one.

:data:`FUSION` classifies every key of a job's config (the train schema and every shipped group
option; ``tests/test_fusion_table.py`` fails on a key it lacks):

- **member**: may differ inside a group; the stacked engine keeps one value per member.
- **shared**: must be equal inside a group (it is part of :func:`fusion_key`); the stacked engine
  does what the key says for all members at once, which the named test shows.
- **alone**: a job whose value is not one the stacked engine supports runs unfused, and the plan's
  log line names the key and its value; a supported value is shared.

A key the table does not know (a user's optimizer argument, a new schema field) makes its job run
alone: fusion fails closed. Under ``data``, ``scheduler`` and ``logger`` every key is shared: those
nodes are handed whole to the same functions on both paths (``load_splits``, each member's own torch
scheduler, each member's own trackers).
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

import torch
from omegaconf import DictConfig, OmegaConf

from sweeplab.config import hidden_sizes, problems
from sweeplab.data import IMAGE_SIZE, N_CLASSES
from sweeplab.errors import ConfigError
from sweeplab.stacked import OPTIMIZERS, bytes_per_member

BUILT_IN_MODEL = "sweeplab.model.mlp"
MB = 2**20


@dataclass(frozen=True)
class Fusion:
    kind: str  # "member", "shared" or "alone"
    # member: the part of the value every member must share (dropout on or off); alone: whether the
    # value (given the job's config) is one the stacked engine supports, then shared
    part: Optional[Callable[[Any, DictConfig], Any]] = None
    why: str = ""  # alone: what the stacked engine does not do


MEMBER, SHARED = Fusion("member"), Fusion("shared")


def alone_unless(supported: Callable[[Any, DictConfig], bool], why: str) -> Fusion:
    return Fusion("alone", supported, why)


FUSION: dict[str, Fusion] = {
    # member: numbers of each member's own optimizer step, initial weights, data order and ending
    # (test_fused.py: test_the_stacked_optimizer_steps_as_torch_optim_does_per_member,
    # test_a_grid_fused_or_not_writes_the_same_files, test_early_stopping_stops_each_member_where_its_own_run_stops;
    # test_fused_resume.py for checkpoint; test_optuna_fused.py for objective)
    "lr": MEMBER, "seed": MEMBER, "patience": MEMBER, "checkpoint": MEMBER, "objective": MEMBER,
    "progress": MEMBER,  # console only: members log epoch lines, never bars
    "optimizer.lr": MEMBER, "optimizer.momentum": MEMBER, "optimizer.alpha": MEMBER, "optimizer.betas": MEMBER,
    "optimizer.eps": MEMBER, "optimizer.weight_decay": MEMBER,
    "model.init_std": MEMBER,
    "model.dropout": Fusion("member", lambda value, cfg: value > 0),  # on and off are different ops
    # shared: the group's data, loop and device (test_a_grid_fused_or_not_writes_the_same_files;
    # test_fused_on_cuda_matches_unfused for device)
    "data.*": SHARED, "batch_size": SHARED, "epochs": SHARED, "drop_last": SHARED, "eval_batch_size": SHARED,
    "device": SHARED, "threads": SHARED,
    # shared: the network's shape and ops (test_the_stacked_backward_gives_autograds_gradients)
    "model.width": SHARED, "model.depth": SHARED, "model.hidden": SHARED, "model.activation": SHARED,
    "model.negative_slope": SHARED, "model.activations": SHARED, "model.bias": SHARED, "model.init": SHARED,
    "model.output": SHARED, "activation.name": SHARED, "activation.negative_slope": SHARED,
    # shared: the optimizer's kind (test_the_stacked_optimizer_steps_as_torch_optim_does_per_member)
    "optimizer.name": SHARED, "optimizer.nesterov": SHARED, "optimizer.centered": SHARED, "optimizer._partial_": SHARED,
    # shared: per-epoch schedules, each member's own torch scheduler (test_a_grid_fused_or_not_writes_the_same_files)
    "scheduler": SHARED, "scheduler.*": SHARED,
    # shared: trackers, each member's own (test_tracking.py: test_fused_members_are_tracked_each_as_its_own_job)
    "logger": SHARED, "logger.*": SHARED,
    # alone
    "model._target_": alone_unless(lambda value, cfg: value == BUILT_IN_MODEL,
                                   f"the stacked model is the built-in {BUILT_IN_MODEL}"),
    "optimizer._target_": alone_unless(lambda value, cfg: OPTIMIZERS.get(cfg.optimizer.get("name")) == value,
                                       f"the stacked optimizer is torch's {', '.join(OPTIMIZERS)} with their names"),
    "optimizer.momentum_decay": alone_unless(lambda value, cfg: False, "the stacked optimizer has no NAdam"),
    "scheduler.interval": alone_unless(lambda value, cfg: value == "epoch",
                                       "fused schedules step per epoch, not per batch"),
    "grad_clip": alone_unless(lambda value, cfg: value is None, "the stacked engine does not clip gradients"),
    # debug=profile: one torch profiler per job; over a group it would time every member's ops as one job's
    "profile": alone_unless(lambda value, cfg: not value, "a profile is one job's ops, a group runs all members' ops"),
}


def rule(key: str) -> Optional[Fusion]:
    """The table's entry for a dotted key: its own, else the nearest ``<parent>.*``."""
    if key in FUSION:
        return FUSION[key]
    parts = key.split(".")
    for end in range(len(parts) - 1, 0, -1):
        found = FUSION.get(".".join(parts[:end]) + ".*")
        if found is not None:
            return found
    return None


def unfusable_reason(cfg: DictConfig) -> Optional[str]:
    """Why the job ``cfg`` (its task config) cannot join a stacked model; None when it can."""
    found = problems(cfg)
    if found:
        return "invalid config: " + "; ".join(found)
    values = flat(cfg)
    unsupported, unknown = [], []
    for key, value in values.items():
        fusion = rule(key)
        if fusion is None:
            unknown.append(key)
        elif fusion.kind == "alone" and not fusion.part(value, cfg):
            unsupported.append(f"{key}={value} ({fusion.why})")
    if unsupported:
        return "; ".join(unsupported)
    if unknown:
        return f"{', '.join(unknown)}: not in the fused launcher's table of keys it honours (_groups.FUSION)"
    return None


def fusion_key(cfg: DictConfig) -> str:
    """What the members of one group share: every shared key's value, and the shared part of member keys."""
    shared = {}
    for key, value in flat(cfg).items():
        fusion = rule(key)
        if fusion.kind != "member":
            shared[key] = value
        elif fusion.part is not None:
            shared[key] = fusion.part(value, cfg)
    return json.dumps(shared, sort_keys=True, default=str)


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
