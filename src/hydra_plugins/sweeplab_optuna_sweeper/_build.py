"""Optuna samplers and pruners from the sweeper's ``_target_`` nodes, with one clear line when one
cannot be built (a wrong argument, a class that does not exist)."""
from __future__ import annotations

import functools
from typing import Any, Optional

import optuna
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig

from ._study import StudyError, experimental_allowed

GRID_SAMPLER = "optuna.samplers.GridSampler"


def build_sampler(
    node: DictConfig, seed: Optional[int], grid: Optional[dict[str, list[Any]]]
) -> optuna.samplers.BaseSampler:
    """The sampler of ``node`` with ``seed`` (if the node has one); a ``_partial_`` GridSampler gets
    ``grid`` as its search space, as hydra-optuna-sweeper does."""
    options = {"seed": seed} if "seed" in node else {}
    if node._target_ == GRID_SAMPLER and not node.get("_partial_", False):
        options["search_space"] = grid
    args = [grid] if node._target_ == GRID_SAMPLER else []
    return _build("sampler", node, args, options)


def build_pruner(node: Optional[DictConfig]) -> optuna.pruners.BasePruner:
    """The pruner of ``node``; null prunes nothing."""
    return optuna.pruners.NopPruner() if node is None else _build("pruner", node, [], {})


def class_name(node: Optional[DictConfig]) -> str:
    return "none" if node is None else str(node._target_).rsplit(".", 1)[-1]


def _build(key: str, node: DictConfig, args: list[Any], options: dict[str, Any]) -> Any:
    try:
        with experimental_allowed():
            built = instantiate(node, **options)
            return built(*args) if isinstance(built, functools.partial) else built
    except (InstantiationException, TypeError, ValueError) as exc:
        cause = exc.__cause__ if isinstance(exc, InstantiationException) and exc.__cause__ else exc
        reason = " ".join(f"{type(cause).__name__}: {cause}".split())
        hint = ""
        if "unexpected keyword argument" in reason:
            hint = (f" (pick another class by its option, hydra/sweeper/{key}=NAME, rather than by "
                    "replacing _target_: the previous option's arguments stay in the node)")
        raise StudyError(f"hydra.sweeper.{key}: cannot build {node._target_}: {reason}{hint}") from exc
