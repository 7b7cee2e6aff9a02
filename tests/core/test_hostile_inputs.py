"""Hostile numbers and paths end in one line naming the key, never in a traceback from torch or the OS."""
from __future__ import annotations

import pytest

from sweeplab.config import problems


@pytest.mark.parametrize("override", ["seed=99999999999999999999", "seed=-1", "data.split_seed=18446744073709551616"])
def test_a_seed_beyond_64_bits_or_below_0_is_refused(make_cfg, override):
    key, value = override.split("=")
    assert problems(make_cfg(override)) == [f"{key}={value}: must be an integer in [0, 2**63 - 1]"]


def test_a_data_root_too_long_for_the_filesystem_is_one_line(make_cfg, tmp_path):
    root = str(tmp_path / ("a" * 5000))
    (found,) = problems(make_cfg(f"data.root={root}"))
    assert found.startswith("data.root=") and "(5" in found and "not a usable path (File name too long)" in found
    assert len(found) < 300


def test_train_py_with_a_huge_seed_exits_non_zero_with_one_line(tmp_path, train_cli):
    result = train_cli("seed=99999999999999999999", "data=synthetic", cwd=tmp_path)
    assert result.returncode != 0
    assert "seed=99999999999999999999: must be an integer in [0, 2**63 - 1]" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr
