"""Hydra sweep syntax -> Optuna distributions: the search-space language of Hydra's own Optuna plugin.

=====================================  ==================================================
``lr=tag(log, interval(1e-4, 1e-1))``  FloatDistribution(1e-4, 1e-1, log=True)
``dropout=interval(0, 0.5)``           FloatDistribution(0, 0.5)
``model.depth=int(interval(1, 3))``    IntDistribution(1, 3)
``batch_size=range(32, 257, 32)``      IntDistribution(32, 256, step=32) (stop excluded, as range)
``optimizer=choice(sgd, adam)``        CategoricalDistribution(("sgd", "adam"))
``optimizer=sgd,adam``                 the same (a comma list is a choice)
``epochs=5``                           not searched: passed to every job as is
=====================================  ==================================================

hydra-optuna-sweeper's older dict form (``hydra.sweeper.search_space``) and its define-by-run hook
(``hydra.sweeper.custom_search_space``) are read here too.
"""
from __future__ import annotations

import importlib
import math
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import IntervalSweep, Override, RangeSweep, Transformer
from hydra.errors import CompactHydraException, OverrideParseException
from hydra.utils import get_method
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)


class SearchSpaceError(CompactHydraException):
    """A search-space entry Optuna cannot sample; the message names it and says what is allowed."""


@dataclass
class SearchSpace:
    distributions: dict[str, BaseDistribution] = field(default_factory=dict)
    fixed: dict[str, str] = field(default_factory=dict)  # key -> value, passed to every job as is
    # key -> how hydra-optuna-sweeper's samplers (all but its grid) read the same entry otherwise
    official_differences: dict[str, str] = field(default_factory=dict)

    def job_overrides(self, params: dict[str, Any]) -> list[str]:
        """A trial's job's overrides: the fixed ones, then the trial's values. A delete without a value
        (``~key``, which parses as ``~key`` = null) reaches the job as ``~key``, as Hydra's own
        sweepers pass it."""
        fixed = [key if key.startswith("~") and value == "null" else f"{key}={value}"
                 for key, value in self.fixed.items()]
        return fixed + [f"{key}={value}" for key, value in params.items()]


def parse_search_space(overrides: list[str], base: Optional[dict[str, BaseDistribution]] = None) -> SearchSpace:
    """Parse ``key=value`` strings (hydra.sweeper.params first, then the command line, which wins)
    over the distributions of ``base`` (hydra.sweeper.search_space)."""
    space = SearchSpace(distributions=dict(base or {}))
    for text in overrides:
        try:
            (override,) = OverridesParser.create().parse_overrides([text])
        except OverrideParseException as exc:
            reason = [line for line in exc.message.splitlines()[1:] if not line.startswith("See ")]
            raise SearchSpaceError(f"search space: cannot parse {text!r}: {' '.join(reason)}") from exc
        key = override.get_key_element()
        space.distributions.pop(key, None)
        space.fixed.pop(key, None)
        space.official_differences.pop(key, None)
        if override.is_sweep_override():
            space.distributions[key] = dist = distribution(override)
            official = _official_range(override.value()) if override.is_range_sweep() else None
            if official is not None and official.high != getattr(dist, "high", official.high):
                space.official_differences[key] = (
                    f"{text}: samples up to {dist.high} here (stop excluded, as in Hydra's range and both "
                    f"plugins' grid sampler); hydra-optuna-sweeper's other samplers go up to {official.high}")
        else:
            space.fixed[key] = override.get_value_element_as_str()
    return space


def distribution(override: Override) -> BaseDistribution:
    """The Optuna distribution of one sweep override (see the module docstring's table)."""
    key, value = override.get_key_element(), override.value()
    if override.is_choice_sweep() or (override.is_range_sweep() and value.shuffle):
        choices = tuple(override.sweep_iterator(transformer=Transformer.encode))
        return CategoricalDistribution(choices)
    if override.is_range_sweep():
        return _range(override.input_line, value)
    if override.is_interval_sweep():
        return _interval(override.input_line, value)
    raise SearchSpaceError(f"search space: {key}: unsupported sweep {override.input_line!r}")


def _range(text: str, value: RangeSweep) -> BaseDistribution:
    start, stop, step = value.start, value.stop, value.step
    if step <= 0 or stop <= start:
        raise SearchSpaceError(f"search space: {text}: needs start < stop and step > 0")
    last = start + (math.ceil((stop - start) / step) - 1) * step  # like Python's range: stop excluded
    if all(isinstance(v, int) for v in (start, stop, step)):
        return IntDistribution(start, last, step=step)
    return FloatDistribution(float(start), float(last), step=float(step))


def _official_range(value: RangeSweep) -> BaseDistribution | None:
    """What hydra-optuna-sweeper (1.4.0.dev, with Optuna 4) makes of ``range`` outside its grid
    sampler: the stop included, as far as the step reaches; None for a shuffled range (a choice)."""
    if value.shuffle or value.step <= 0 or value.stop <= value.start:
        return None
    with warnings.catch_warnings():  # Optuna warns where the step does not reach the stop
        warnings.simplefilter("ignore")
        if all(isinstance(v, int) for v in (value.start, value.stop, value.step)):
            return IntDistribution(value.start, value.stop, step=value.step)
        return FloatDistribution(float(value.start), float(value.stop), step=float(value.step))


def _interval(text: str, value: IntervalSweep) -> BaseDistribution:
    low, high, log = value.start, value.end, "log" in value.tags
    if not low < high:
        raise SearchSpaceError(f"search space: {text}: needs low < high")
    if log and low <= 0:
        raise SearchSpaceError(f"search space: {text}: a log scale needs low > 0")
    if isinstance(low, int) and isinstance(high, int):
        return IntDistribution(low, high, log=log)
    return FloatDistribution(float(low), float(high), log=log)


def check_group_choices(space: SearchSpace, group_options: Callable[[str], list[str]]) -> None:
    """Refuse, before the first trial, a choice of a config group (``optimizer=choice(sgd, adam)``)
    that names an option the group does not have: its trials could never compose a config.
    ``group_options``: the options of a group, [] for a key that is not one (Hydra's config loader)."""
    for key, dist in space.distributions.items():
        if not isinstance(dist, CategoricalDistribution):
            continue
        group = key.lstrip("+~").split("@", 1)[0]
        options = group_options(group)
        missing = [str(choice) for choice in dist.choices if options and str(choice) not in options]
        if missing:
            raise SearchSpaceError(f"search space: {key}: no option {', '.join(map(repr, missing))} in config group "
                                   f"{group}; its options: {', '.join(options)}")


def grid(space: SearchSpace) -> dict[str, list[Any]]:
    """Every value of each searched key, for Optuna's GridSampler (discrete distributions only)."""
    values: dict[str, list[Any]] = {}
    for key, dist in space.distributions.items():
        if isinstance(dist, CategoricalDistribution):
            values[key] = list(dist.choices)
        elif isinstance(dist, IntDistribution) and not dist.log:
            values[key] = list(range(dist.low, dist.high + 1, dist.step))
        elif isinstance(dist, FloatDistribution) and dist.step is not None:
            count = round((dist.high - dist.low) / dist.step) + 1
            values[key] = [dist.low + i * dist.step for i in range(count)]
        else:
            raise SearchSpaceError(
                f"search space: {key}: the grid sampler needs discrete values (choice, range, or a "
                f"comma list), not {dist}"
            )
    return values


def suggest(trial: Any, key: str, dist: BaseDistribution) -> Any:
    """Ask ``trial`` for ``key`` through Optuna's public suggest API."""
    if isinstance(dist, CategoricalDistribution):
        return trial.suggest_categorical(key, dist.choices)
    if isinstance(dist, IntDistribution):
        return trial.suggest_int(key, dist.low, dist.high, step=dist.step, log=dist.log)
    return trial.suggest_float(key, dist.low, dist.high, step=dist.step, log=dist.log)


def distributions_from_dicts(search_space: Mapping[str, Mapping[str, Any]]) -> dict[str, BaseDistribution]:
    """hydra-optuna-sweeper's dict form: ``{key: {type: int|float|categorical, low, high, log, step, choices}}``."""
    return {str(key): _from_dict(str(key), dict(spec)) for key, spec in search_space.items()}


def _from_dict(key: str, spec: dict[str, Any]) -> BaseDistribution:
    where = f"hydra.sweeper.search_space.{key}"
    kind, log, step = spec.get("type"), bool(spec.get("log", False)), spec.get("step")
    unknown = set(spec) - {"type", "low", "high", "log", "step", "choices"}
    if unknown:
        raise SearchSpaceError(f"{where}: unknown keys {sorted(unknown)}; allowed: type, low, high, log, step, choices")
    if kind == "categorical":
        if not spec.get("choices"):
            raise SearchSpaceError(f"{where}: type categorical needs a non-empty list of choices")
        return CategoricalDistribution(tuple(spec["choices"]))
    if kind not in ("int", "float"):
        raise SearchSpaceError(f"{where}.type={kind}: must be int, float or categorical")
    if spec.get("low") is None or spec.get("high") is None:
        raise SearchSpaceError(f"{where}: type {kind} needs low and high")
    try:
        if kind == "int":
            return IntDistribution(int(spec["low"]), int(spec["high"]), log=log, step=int(step or 1))
        return FloatDistribution(float(spec["low"]), float(spec["high"]), log=log,
                                 step=None if step is None else float(step))
    except ValueError as exc:
        raise SearchSpaceError(f"{where}: {exc}") from exc


CustomSearchSpace = Callable[[Any, Any], None]


def load_custom_search_space(path: str) -> CustomSearchSpace:
    """The function ``path`` names: ``package.module.function``, or ``.module.function`` for a
    module beside the app's script (hydra-optuna-sweeper's example names its own script so)."""
    if not path.startswith("."):
        try:
            return get_method(path)
        except Exception as exc:
            raise SearchSpaceError(f"hydra.sweeper.custom_search_space={path}: {' '.join(str(exc).split())}") from exc
    module_name, _, function_name = path[1:].rpartition(".")
    main = sys.modules.get("__main__")
    main_file = getattr(main, "__file__", None)
    try:
        if main_file and Path(main_file).stem == module_name:
            module = main
        else:
            module = importlib.import_module(module_name)
        return getattr(module, function_name)
    except (ImportError, AttributeError) as exc:
        raise SearchSpaceError(f"hydra.sweeper.custom_search_space={path}: no function {function_name!r} in "
                               f"module {module_name!r} beside the app's script ({exc})") from exc
