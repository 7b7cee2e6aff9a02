"""A top-level value given as an interpolation is range-checked as what it resolves to; a group key that
follows a short name (``optimizer.lr: ${lr}``) is checked once, under the short name."""
from sweeplab.config import problems


def test_an_interpolated_short_name_is_checked_as_its_value_and_once(make_cfg):
    found = problems(make_cfg("data=synthetic", "seed=0", "lr=${seed}"))
    about_lr = [line for line in found if "lr" in line]
    assert len(about_lr) == 1 and about_lr[0].startswith("lr=0.0: must be a number > 0"), found
