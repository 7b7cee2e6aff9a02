"""What a first-time user meets: `--help` lists the groups to pick, and a group file missing what
the run needs says what to add."""
from __future__ import annotations

import runpy
import sys

import pytest
from hydra.core.global_hydra import GlobalHydra

from conftest import REPO
from sweeplab.config import problems


def test_help_lists_the_groups_a_user_picks_and_no_internal_schema(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", [str(REPO / "train.py"), "--help"])
    GlobalHydra.instance().clear()
    try:
        with pytest.raises(SystemExit) as exited:
            runpy.run_path(str(REPO / "train.py"), run_name="__main__")
    finally:
        GlobalHydra.instance().clear()
    assert exited.value.code == 0
    groups = capsys.readouterr().out.split("== Config ==")[0]
    listed = [line.split(":")[0] for line in groups.splitlines() if ": " in line]
    assert {"optimizer", "model", "data", "activation", "scheduler", "sweep"} <= set(listed)
    assert [group for group in listed if "schema" in group] == []


@pytest.mark.parametrize(("group", "option", "passed"), [("optimizer", "nadam", "params"),
                                                         ("scheduler", "step", "optimizer")])
def test_a_group_file_without_partial_says_to_add_it(make_cfg, group, option, passed):
    found = problems(make_cfg(f"{group}={option}", f"~{group}._partial_"))
    assert [line for line in found if "_partial_" in line] == [
        f"{group}: add `_partial_: true` to its config: the run calls "
        f"{make_cfg(f'{group}={option}')[group]._target_} with {passed} itself"]
