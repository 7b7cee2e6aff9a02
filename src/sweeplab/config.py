"""The config schema: typed dataclasses (sweeplab.app registers them in Hydra's ConfigStore), and their
range checks.

Hydra checks types while it composes (``lr=abc`` fails there); :func:`validate` checks ranges and
names before any data is loaded (``lr=-1`` fails here). Each group option's YAML file extends its
schema with ``defaults: [/schema_<group>_<name>@_here_]``, so ``conf/`` holds values and this file
holds types.
"""
from __future__ import annotations

import dataclasses
import difflib
import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Iterator, List, Optional

from hydra.utils import to_absolute_path
from omegaconf import MISSING, DictConfig, ListConfig, OmegaConf

from sweeplab import targets
from sweeplab.errors import ConfigError
from sweeplab.jobfiles import NUMERIC_METRICS

ACTIVATIONS = ("relu", "sigmoid", "tanh", "leaky_relu", "gelu", "elu", "silu")
INITS = ("default", "normal", "xavier_uniform", "xavier_normal", "kaiming_uniform", "kaiming_normal")
OUTPUTS = ("logits", "log_softmax")
IDX_DATASETS = ("fashion_mnist", "kmnist", "mnist")
PROGRESS_MODES = ("auto", "bar", "lines")
SCHEDULER_INTERVALS = ("epoch", "step")
SCHEDULER_OURS = ("interval",)  # scheduler keys that are ours, not the scheduler's arguments
SCHEDULER_GIVEN = ("steps_per_epoch",)  # passed by the run to a scheduler that takes it
# Names a job can return to a sweeper: keys of metrics.json that hold numbers.
OBJECTIVES = NUMERIC_METRICS


@dataclass
class DataSplitConfig:
    """The keys of a data config that are ours, not its target's: what happens to the arrays it returns."""

    val_fraction: float = 0.1  # carved from the training set when the target returns no validation split
    split_seed: int = 0  # fixes the validation split (and data.limit's subset) independently of the seed
    mean: Optional[float] = None  # with std: (x - mean) / std after uint8 -> x/255; unset: x/255 like ToTensor
    std: Optional[float] = None
    limit: Optional[float] = None  # keep a random part of each split: a fraction <= 1, or a count > 1
    n_classes: Optional[int] = None  # unset: the largest label + 1


@dataclass
class IdxDataConfig(DataSplitConfig):
    """A 28x28 10-class image set stored as IDX files (FashionMNIST, KMNIST, MNIST)."""

    _target_: str = MISSING
    name: str = MISSING
    root: str = "data"  # your folder; relative paths resolve against the launch directory
    system_root: Optional[str] = None  # a folder a system package installs (Debian's)
    download: bool = True  # last resort: torchvision's download into `root`
    n_classes: Optional[int] = 10


@dataclass
class SyntheticDataConfig(DataSplitConfig):
    """Generated 784-feature, 10-class data: fast, offline, used by the end-to-end tests."""

    _target_: str = MISSING
    n_train: int = 2000
    n_test: int = 500
    noise: float = 0.7  # std of the per-sample noise around each class prototype (pixel scale 0..1)
    data_seed: int = 0
    n_classes: Optional[int] = 10


DATA_OURS = tuple(f.name for f in fields(DataSplitConfig))
MODEL_GIVEN = ("input_shape", "n_classes")  # what the run passes to a model's _target_


@dataclass
class MLPConfig:
    """The built-in model (``sweeplab.training.model.mlp``); the data's input shape and class count come from
    the run."""

    _target_: str = MISSING
    width: int = 256  # hidden units per layer
    depth: int = 1  # hidden layers
    hidden: Optional[List[int]] = None  # explicit hidden sizes; when set, width and depth are unused
    activation: str = MISSING  # conf/model/mlp.yaml: ${activation.name}, the `activation` group
    negative_slope: float = MISSING  # ${activation.negative_slope} (leaky_relu only)
    activations: Optional[List[str]] = None  # per hidden layer; unset: `activation` for all
    bias: bool = True
    init: str = "default"  # weight init; biases keep PyTorch's default
    init_std: float = 0.01  # for init=normal
    dropout: float = 0.0  # after each hidden activation
    output: str = "logits"  # logits -> cross-entropy; log_softmax -> NLL (same loss, seed-note style)


def hidden_sizes(model: DictConfig) -> List[int]:
    """The hidden layer sizes: ``model.hidden`` if given, else ``depth`` layers of ``width``."""
    return list(model.hidden) if model.hidden is not None else [model.width] * model.depth


@dataclass
class ActivationConfig:
    name: str = MISSING
    negative_slope: float = 0.01  # leaky_relu only


@dataclass
class SGDConfig:
    _target_: str = MISSING
    _partial_: bool = True
    name: str = "sgd"
    default_lr: float = MISSING  # the top-level lr when the command line gives none
    lr: float = MISSING
    momentum: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0


@dataclass
class AdamConfig:
    _target_: str = MISSING
    _partial_: bool = True
    name: str = "adam"
    default_lr: float = MISSING  # the top-level lr when the command line gives none
    lr: float = MISSING
    betas: List[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8
    weight_decay: float = 0.0


@dataclass
class AdamWConfig(AdamConfig):
    name: str = "adamw"
    weight_decay: float = 0.01


@dataclass
class RMSpropConfig:
    _target_: str = MISSING
    _partial_: bool = True
    name: str = "rmsprop"
    default_lr: float = MISSING  # the top-level lr when the command line gives none
    lr: float = MISSING
    alpha: float = 0.99
    eps: float = 1e-8
    momentum: float = 0.0
    weight_decay: float = 0.0


@dataclass
class TrainConfig:
    """The top level. Short names here are what users type; groups interpolate them (``lr: ${lr}``)."""

    data: Any = MISSING
    model: Any = MISSING  # typed by its option's schema (MLPConfig for model=mlp); a user's model is free
    activation: ActivationConfig = MISSING
    optimizer: Any = MISSING
    scheduler: Any = None  # a `_partial_` torch scheduler config (the scheduler group); None: constant lr
    lr: Optional[float] = None  # conf/train.yaml: the chosen optimizer's default_lr unless given
    batch_size: int = 256
    epochs: int = 10
    seed: int = 0
    device: str = "auto"  # auto: cuda if present, else mps if present, else cpu
    drop_last: bool = False  # drop the last short batch of each epoch
    grad_clip: Optional[float] = None  # clip the gradients' global L2 norm to this before each step
    patience: Optional[int] = None  # stop after this many epochs without a better val_acc
    # a mean train loss above this (or a loss that is not finite) ends the run `diverged` at that
    # epoch; chance is ln(classes), 2.3 for ten. null: only a non-finite loss
    diverge_above: Optional[float] = 1000.0
    checkpoint: bool = False  # save the best weights to checkpoint.pt
    threads: Optional[int] = None  # torch CPU threads; unset: torch's default
    progress: str = "auto"  # auto: a bar on a terminal, plain epoch lines otherwise and in multirun
    eval_batch_size: int = 4096
    profile: bool = False  # torch.profiler over training; its table into profile.txt (debug=profile)
    objective: Any = "best_val_acc"  # a metrics.json key, or a list of them, that the job returns
    allow_test_objective: bool = False  # a test metric as the objective selects on test data: only when asked
    logger: Any = None  # the logger group: name -> a `_target_` tracker node (sweeplab.job.tracking)


OPTIMIZER_SCHEMAS = (SGDConfig, AdamConfig, AdamWConfig, RMSpropConfig)
OPTIMIZER_NAMES = tuple(schema.name for schema in OPTIMIZER_SCHEMAS)
OPTIMIZER_OURS = ("name", "default_lr")  # optimizer keys that are ours, not the optimizer's arguments


# ---------------------------------------------------------------- range checks


def _greater_than(low: float) -> tuple[Any, str]:
    return (lambda value: value > low), f"a number > {low}"


def _at_least(low: int) -> tuple[Any, str]:
    return (lambda value: value >= low), f">= {low}"


FLOAT32_MAX = 3.4028234663852886e38  # torch.finfo(torch.float32).max: the weights' and the lr's dtype


def _learning_rate() -> tuple[Any, str]:
    return (lambda value: 0 < value <= FLOAT32_MAX), f"a number > 0 and <= {FLOAT32_MAX:.4g} (float32)"


def _fraction() -> tuple[Any, str]:
    return (lambda value: 0 <= value < 1), "a number in [0, 1)"


def _proper_fraction() -> tuple[Any, str]:
    return (lambda value: 0 < value < 1), "a number in (0, 1)"


def _seed() -> tuple[Any, str]:
    # torch's and numpy's generators take seeds of at most 64 bits, numpy's none below 0
    return (lambda value: 0 <= value < 2**63), "an integer in [0, 2**63 - 1]"


def _one_of(names: tuple[str, ...]) -> tuple[Any, str]:
    return (lambda value: value in names), "one of " + ", ".join(names)


# key -> (check, what is allowed). Keys a config lacks (momentum under adam) and nulls are skipped.
RULES: dict[str, tuple[Any, str]] = {
    "lr": _learning_rate(),
    "seed": _seed(),
    "data.split_seed": _seed(),
    "data.data_seed": _seed(),
    "batch_size": _at_least(1),
    "epochs": _at_least(1),
    "eval_batch_size": _at_least(1),
    "patience": _at_least(1),
    "threads": _at_least(1),
    "progress": _one_of(PROGRESS_MODES),
    "data.val_fraction": _proper_fraction(),
    "data.n_train": _at_least(1),
    "data.limit": _greater_than(0),
    "data.n_classes": _at_least(2),
    "data.n_test": _at_least(1),
    "data.noise": _at_least(0),
    "data.std": _greater_than(0),
    "model.width": _at_least(1),
    "model.depth": _at_least(0),
    "model.init": _one_of(INITS),
    "model.init_std": _greater_than(0),
    "model.dropout": _fraction(),
    "model.output": _one_of(OUTPUTS),
    "activation.name": _one_of(ACTIVATIONS),
    "activation.negative_slope": _at_least(0),
    "optimizer.name": _one_of(OPTIMIZER_NAMES),
    "optimizer.lr": _learning_rate(),
    "optimizer.default_lr": _learning_rate(),
    "optimizer.momentum": _at_least(0),
    "optimizer.weight_decay": _at_least(0),
    "optimizer.eps": _greater_than(0),
    "optimizer.alpha": _fraction(),
    "grad_clip": _greater_than(0),
    "diverge_above": _greater_than(0),
    "scheduler.interval": _one_of(SCHEDULER_INTERVALS),
    "scheduler.step_size": _at_least(1),
    "scheduler.gamma": _greater_than(0),
    "scheduler.warmup_epochs": _at_least(0),
    "scheduler.min_lr_factor": _fraction(),
}


def _select(cfg: DictConfig, key: str) -> Any:
    """The value at ``key``; None where a part is missing or not a node. ``get``, not ``in`` then ``[]``:
    each resolves an interpolation anew, which is most of what checking a config costs."""
    node: Any = cfg
    for part in key.split("."):
        if not isinstance(node, DictConfig):
            return None
        node = node.get(part)
    return node


def _written(plain: dict, key: str) -> Any:
    """The value at ``key`` as the config writes it (an interpolation is its ``${...}`` text), from ``plain``,
    the config as one unresolved container: reading it is cheap, where every read of a DictConfig
    validates and dereferences nodes. None where a part is missing or the value is MISSING (``???``)."""
    node: Any = plain
    for part in key.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return None if node == "???" else node


def _is_interpolation(value: Any) -> bool:
    return isinstance(value, str) and "${" in value


def _value(cfg: DictConfig, plain: dict, key: str) -> Any:
    """The value at ``key``, resolved: read from ``plain`` (see :func:`_written`), through ``cfg`` only where
    it is an interpolation."""
    value = _written(plain, key)
    return _select(cfg, key) if _is_interpolation(value) else value


def unknown_keys(node: DictConfig, path: str = "") -> Iterator[str]:
    """Keys the schema does not know (added with ``+key=value``), with the nearest known ones.

    Every node typed by a schema dataclass is checked against its fields, so keys that other groups
    add to the schema pass; untyped nodes (a ``_target_`` the user wrote) take any key."""
    schema = OmegaConf.get_type(node)
    known = [f.name for f in dataclasses.fields(schema)] if dataclasses.is_dataclass(schema) else None
    for key in node:
        full = f"{path}{key}"
        if known is not None and key not in known:
            nearest = difflib.get_close_matches(str(key), known, n=3, cutoff=0.5)
            hint = f"nearest known keys: {', '.join(nearest)}" if nearest else f"known keys: {', '.join(known)}"
            yield f"{full}={node._get_node(key)._value()!r}: unknown key ({hint})"
        elif OmegaConf.is_dict(node._get_node(key)) and not OmegaConf.is_missing(node, key):
            yield from unknown_keys(node[key], f"{full}.")


def non_finite(node: Any, path: str = "") -> Iterator[tuple[str, float]]:
    """(key, value) of every inf or nan number in ``node``, the config as one unresolved container;
    interpolations (strings there) are checked at their source."""
    for key, value in node.items() if isinstance(node, dict) else enumerate(node):
        full = f"{path}.{key}" if isinstance(node, dict) and path else f"{path}[{key}]" if path else str(key)
        if isinstance(value, (dict, list)):
            yield from non_finite(value, full)
        elif isinstance(value, float) and not math.isfinite(value):
            yield full, value


def problems(cfg: DictConfig) -> list[str]:
    """Every range or name problem in ``cfg``, one ``key=value: allowed`` line each."""
    found = list(unknown_keys(cfg))
    plain = OmegaConf.to_container(cfg, resolve=False)
    if "lr" in plain["optimizer"] and _value(cfg, plain, "optimizer.lr") is None:  # `lr: ${lr}`, no lr= nor default_lr
        found.append(f"lr: not given, and optimizer {cfg.optimizer.get('_target_')} has no default_lr: "
                     "give lr=... or add `default_lr: <number>` to its config")
    bad_numbers = dict(non_finite(plain))
    found += [f"{key}={value}: must be a finite number" for key, value in bad_numbers.items()]
    for key, (check, allowed) in RULES.items():
        value = _written(plain, key)
        if "." in key and _is_interpolation(value):
            continue  # e.g. optimizer.lr: ${lr}, already checked as lr
        value = _value(cfg, plain, key)
        if value is None or key in bad_numbers:
            continue
        if not check(value):
            found.append(f"{key}={value!r}: must be {allowed}")

    hidden = _value(cfg, plain, "model.hidden")
    if hidden is not None and any(size < 1 for size in hidden):
        found.append(f"model.hidden={list(hidden)}: every size must be an integer >= 1")
    activations = _value(cfg, plain, "model.activations")
    if activations is not None:
        n_hidden = len(hidden_sizes(cfg.model))
        if len(activations) != n_hidden:
            found.append(
                f"model.activations={list(activations)}: must name one activation per hidden layer "
                f"({n_hidden})"
            )
        for name in activations:
            if name not in ACTIVATIONS:
                found.append(f"model.activations has {name!r}: must be one of {', '.join(ACTIVATIONS)}")
    betas = _value(cfg, plain, "optimizer.betas")
    if betas is not None and (len(betas) != 2 or not all(0 <= b < 1 for b in betas)):
        found.append(f"optimizer.betas={list(betas)}: must be two numbers in [0, 1)")
    root = _value(cfg, plain, "data.root")
    folder = None if root is None else Path(to_absolute_path(str(Path(root).expanduser())))
    try:
        if folder is not None and folder.exists() and not folder.is_dir():
            found.append(f"data.root={root!r}: exists but is not a folder; must be a folder (or not exist yet)")
    except OSError as exc:  # a name too long for the filesystem, a loop of links
        shown = root if len(str(root)) <= 80 else f"{str(root)[:60]}... ({len(str(root))} characters)"
        found.append(f"data.root={shown!r}: not a usable path ({exc.strerror}); must be a folder path")
    mean, std = _value(cfg, plain, "data.mean"), _value(cfg, plain, "data.std")
    if (mean is None) != (std is None):
        found.append(f"data.mean={mean}, data.std={std}: set both or neither")
    limit = _value(cfg, plain, "data.limit")
    if limit is not None and limit > 1 and limit != int(limit):
        found.append(f"data.limit={limit}: must be a fraction in (0, 1] or a whole number of samples")
    if "_target_" in cfg.model:
        found += targets.problems("model", cfg.model, given=MODEL_GIVEN)
    else:
        found.append("model: has no _target_: name the nn.Module class or factory (docs/guide/config.md)")
    if "_target_" in cfg.data:
        found += targets.problems("data", cfg.data, DATA_OURS)
    else:
        found.append("data: has no _target_: name the function that returns its arrays (docs/guide/config.md)")
    if "_target_" in cfg.optimizer:
        found += targets.problems("optimizer", cfg.optimizer, OPTIMIZER_OURS, positional=1)
    if cfg.scheduler is not None:
        found += targets.problems("scheduler", cfg.scheduler, SCHEDULER_OURS, SCHEDULER_GIVEN, positional=1)
    for name, node in (cfg.logger or {}).items():
        if node is not None:
            found += targets.problems(f"logger.{name}", node)
    objectives = cfg.objective if isinstance(cfg.objective, ListConfig) else [cfg.objective]
    for name in objectives:
        if name not in OBJECTIVES:
            found.append(f"objective={name!r}: must be one of {', '.join(OBJECTIVES)}")
        elif str(name).startswith("test_") and not cfg.get("allow_test_objective", False):
            found.append(f"objective={name!r}: selecting on a test metric leaves no unbiased test; choose on a "
                         "validation metric, or set allow_test_objective=true to do it anyway")
    return found


def validate(cfg: DictConfig) -> None:
    """Raise one :class:`ConfigError` listing every problem, before any work starts."""
    found = problems(cfg)
    if found:
        raise ConfigError("invalid config: " + "; ".join(found))
