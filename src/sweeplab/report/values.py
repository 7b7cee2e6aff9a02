"""How parameter values and configs are labelled and scaled: the same in tables, legends, axes, Optuna.

Values come from Hydra overrides, so a column can hold numbers, strings, booleans or nulls.
"""
from __future__ import annotations

from typing import Any, Iterable

import pandas as pd

# A numeric parameter whose largest value is at least this many times its smallest gets a log axis.
LOG_SPAN = 100
NO_PARAMS = "(all jobs)"  # the config label of a sweep that sweeps nothing but the seed


def format_value(value: Any) -> str:
    """``0.001``, ``64`` (also for a 64.0 that pandas made a float), ``adam``, ``True``."""
    if is_number(value):
        return f"{value:.6g}"
    return str(value)


def is_number(value: Any) -> bool:
    """A real number, not a boolean (pandas and numpy count booleans as numbers)."""
    return pd.api.types.is_number(value) and not pd.api.types.is_bool(value)


def all_numbers(values: Iterable[Any]) -> bool:
    return all(is_number(value) for value in values)


def wants_log_scale(name: str, values: Iterable[Any]) -> bool:
    """A learning rate, or positive numbers spanning at least ``LOG_SPAN``x."""
    present = [value for value in values if not pd.isna(value)]
    if not present or not all_numbers(present) or min(present) <= 0:
        return False
    numbers = [float(value) for value in present]
    return name.split(".")[-1] == "lr" or max(numbers) / min(numbers) >= LOG_SPAN


def config_label(jobs: pd.DataFrame, params: list[str]) -> pd.Series:
    """``lr=0.01, optimizer=adam`` for each row: the config it belongs to."""
    if not params:
        return pd.Series(NO_PARAMS, index=jobs.index)
    return jobs[params].apply(lambda row: ", ".join(f"{k}={format_value(v)}" for k, v in row.items()), axis=1)
