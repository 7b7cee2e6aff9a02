"""Selecting on a test metric is refused unless asked for explicitly."""
from __future__ import annotations

import pytest

from sweeplab.config import ConfigError, validate


def test_a_test_metric_as_the_objective_is_refused_with_one_line(make_cfg):
    with pytest.raises(ConfigError) as error:
        validate(make_cfg("objective=test_acc_at_best_val"))
    message = str(error.value)
    assert "objective='test_acc_at_best_val'" in message and "allow_test_objective=true" in message
    assert "\n" not in message


def test_a_test_metric_in_a_list_of_objectives_is_refused_too(make_cfg):
    with pytest.raises(ConfigError, match="objective='test_acc'"):
        validate(make_cfg("objective=[best_val_acc,test_acc]"))


def test_asked_for_explicitly_it_is_allowed(make_cfg):
    validate(make_cfg("objective=test_acc_at_best_val", "allow_test_objective=true"))
    validate(make_cfg("objective=best_val_acc"))
