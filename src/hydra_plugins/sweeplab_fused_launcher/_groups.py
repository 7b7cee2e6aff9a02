"""Which jobs of a multirun can train as one stacked model, and how many fit in one.

:data:`FUSION` classifies every key of a job's config (the train schema and every shipped group
option; ``tests/fused/test_fusion_table.py`` fails on a key it lacks):

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
import resource
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import torch
from omegaconf import DictConfig, OmegaConf

from sweeplab.config import hidden_sizes, problems
from sweeplab.fused.stacked import OPTIMIZERS, bytes_per_member

BUILT_IN_MODEL = "sweeplab.training.model.mlp"
MB = 2**20
# hydra.launcher.max_members when null, on a CPU: a CPU runs a stacked step at its full rate with some
# tens of members, so a larger group gains no speed and only holds more memory (benchmarks/sweep_scale.py
# runs the same sweep both ways); a GPU's groups are bounded by the memory budget alone
CPU_MAX_MEMBERS = 64


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
    "diverge_above": MEMBER,  # each grid of test_a_grid_fused_or_not_writes_the_same_files holds a diverging member
    "allow_test_objective": MEMBER,  # read by the config check only, as objective is
    "optimizer.default_lr": MEMBER,  # only ever the member's lr (conf/train.yaml), resolved per member
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
    return invalid_reason(cfg) or unsupported_reason(cfg, flat(cfg))


def invalid_reason(cfg: DictConfig) -> Optional[str]:
    found = problems(cfg)
    return "invalid config: " + "; ".join(found) if found else None


def unsupported_reason(cfg: DictConfig, values: dict[str, Any]) -> Optional[str]:
    """Why the job ``cfg``, a valid config whose :func:`flat` is ``values``, cannot join a stacked model."""
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


def fusion_key(cfg: DictConfig, values: Optional[dict[str, Any]] = None) -> str:
    """What the members of one group share: every shared key's value, and the shared part of member keys.
    ``values``: the config's :func:`flat`, when the caller has it."""
    shared = {}
    for key, value in (flat(cfg) if values is None else values).items():
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


def differing_keys(flats: Sequence[dict[str, Any]]) -> list[str]:
    """The keys whose values differ between configs (``flats``: their :func:`flat`); a group key that
    follows a top-level short name (``optimizer.lr: ${lr}``) is named by the short name only."""
    differing = [key for key in flats[0] if len({json.dumps(f.get(key), default=str) for f in flats}) > 1]

    def follows_short_name(key: str) -> bool:
        short = key.rpartition(".")[2]
        return "." in key and short in differing and all(f[key] == f[short] for f in flats)

    return [key for key in differing if not follows_short_name(key)]


def layer_sizes(cfg: DictConfig, input_shape: Sequence[int], n_classes: int) -> list[int]:
    """The stacked MLP's layer sizes for the data's sample shape and class count."""
    return [math.prod(input_shape), *hidden_sizes(cfg.model), n_classes]


def describe_shape(cfg: DictConfig, sizes: Sequence[int]) -> str:
    """``784-64-10 relu, sgd, batch 32, 2 epochs``: what a group's members share, in short."""
    dropout = ", dropout" if cfg.model.dropout > 0 else ""
    return (f"{'-'.join(map(str, sizes))} {cfg.activation.name}{dropout}, {cfg.optimizer.name}, "
            f"batch {cfg.batch_size}, {cfg.epochs} epochs")


def member_bytes(cfg: DictConfig, sizes: Sequence[int]) -> int:
    return bytes_per_member(sizes, cfg.model.bias, cfg.optimizer.name, cfg.batch_size, cfg.eval_batch_size)


@dataclass(frozen=True)
class Budget:
    bytes: int
    source: str  # where it comes from, for the plan's log line

    def __str__(self) -> str:
        return f"{self.bytes / MB:.0f} MB ({self.source})"


def default_budget(device: torch.device) -> Budget:
    """Half the memory this process may still allocate on ``device``."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return Budget(free // 2, f"half of the {free / MB:.0f} MB free on {device}")
    free, limit = free_memory()
    return Budget(free // 2, f"half of the {free / MB:.0f} MB that {limit} leaves")


def free_memory(
    meminfo: Path = Path("/proc/meminfo"), cgroup_root: Path = Path("/sys/fs/cgroup"),
    own_cgroup: Path = Path("/proc/self/cgroup"), status: Path = Path("/proc/self/status"),
) -> tuple[int, str]:
    """The bytes this process may still allocate in RAM, and what limits it: the least of the kernel's
    MemAvailable, what the process's cgroup memory limit leaves, and what its address-space limit
    (``ulimit -v``, RLIMIT_AS) leaves."""
    left = {
        "MemAvailable": _meminfo_available(meminfo),
        "the cgroup memory limit": cgroup_memory_left(cgroup_root, own_cgroup),
        "RLIMIT_AS (ulimit -v)": address_space_left(status),
    }
    known = {name: value for name, value in left.items() if value is not None}
    if not known:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"), "free physical pages"
    name = min(known, key=known.__getitem__)
    return known[name], name


def _meminfo_available(meminfo: Path) -> Optional[int]:
    return _kb_field(meminfo, "MemAvailable:")


def _kb_field(path: Path, name: str) -> Optional[int]:
    """``name``'s value in a /proc file of ``Name:   123 kB`` lines, in bytes."""
    try:
        with open(path) as lines:
            return next((int(line.split()[1]) * 1024 for line in lines if line.startswith(name)), None)
    except OSError:
        return None


def address_space_left(status: Path = Path("/proc/self/status")) -> Optional[int]:
    """RLIMIT_AS's soft limit less the process's virtual size; None without a limit."""
    limit, _ = resource.getrlimit(resource.RLIMIT_AS)
    if limit == resource.RLIM_INFINITY:
        return None
    used = _kb_field(status, "VmSize:") or 0
    return max(0, limit - used)


def cgroup_memory_left(root: Path = Path("/sys/fs/cgroup"), own: Path = Path("/proc/self/cgroup")) -> Optional[int]:
    """The least room left under a memory limit of the process's cgroup or its parents (cgroup v2:
    ``memory.max`` less ``memory.current``; v1: ``memory.limit_in_bytes`` less ``memory.usage_in_bytes``);
    None without a limit."""
    try:
        path = next((line.split(":", 2)[2].strip() for line in own.read_text().splitlines()
                     if line.startswith("0::")), "/")
    except OSError:
        path = "/"
    own_folder = root / path.lstrip("/")
    folders = [own_folder, *own_folder.parents[: len(own_folder.relative_to(root).parts)], root / "memory"]
    left = [_left(folder / "memory.max", folder / "memory.current") for folder in folders]
    left += [_left(folder / "memory.limit_in_bytes", folder / "memory.usage_in_bytes") for folder in folders]
    known = [value for value in left if value is not None]
    return min(known) if known else None


def _left(limit_file: Path, usage_file: Path) -> Optional[int]:
    try:
        limit = limit_file.read_text().strip()
        if limit == "max" or int(limit) >= 2**62:  # v2 "max", v1's page-rounded 2**63: no limit
            return None
        return max(0, int(limit) - int(usage_file.read_text()))
    except (OSError, ValueError):
        return None


def chunk_size(member_bytes: int, budget: Budget, max_members: Optional[int], device: torch.device) -> int:
    """How many members of ``member_bytes`` each one stacked model may hold under the budget (0: not one),
    at most ``max_members``, or when that is null on a CPU, :data:`CPU_MAX_MEMBERS`."""
    if max_members is None and device.type == "cpu":
        max_members = CPU_MAX_MEMBERS
    return min(budget.bytes // member_bytes, max_members or math.inf)


def split(indices: Sequence[int], size: int) -> list[list[int]]:
    return [list(indices[start : start + size]) for start in range(0, len(indices), size)]
