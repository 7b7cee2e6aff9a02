"""Each optimizer option has its own default lr; ``lr=`` sets the lr of whichever optimizer is chosen."""
from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from conftest import CONF, TINY, multirun
from sweeplab.config import problems
from sweeplab.job.task import main

OPTIMIZERS = sorted(path.stem for path in (CONF / "optimizer").glob("*.yaml"))
EXPERIMENTS = sorted(path.stem for path in (CONF / "experiment").glob("*.yaml"))


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_each_optimizer_trains_at_its_own_default_lr_unless_lr_is_given(make_cfg, optimizer):
    default = OmegaConf.load(CONF / "optimizer" / f"{optimizer}.yaml").default_lr
    cfg = make_cfg(f"optimizer={optimizer}")
    assert cfg.lr == cfg.optimizer.lr == default
    given = make_cfg(f"optimizer={optimizer}", "lr=0.0123")
    assert given.lr == given.optimizer.lr == 0.0123
    assert problems(cfg) == problems(given) == []


def test_sgd_and_adam_defaults_differ_as_their_usual_settings_do(make_cfg):
    """The point of the defaults: `optimizer=sgd,adam` must not run Adam at SGD's lr."""
    assert make_cfg("optimizer=sgd").lr == 0.1
    assert make_cfg("optimizer=adam").lr == 0.001


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_a_seed_note_experiment_keeps_its_own_lr_under_any_optimizer(make_cfg, experiment):
    written = OmegaConf.load(CONF / "experiment" / f"{experiment}.yaml").lr
    assert make_cfg(f"experiment={experiment}").optimizer.lr == written
    assert make_cfg(f"experiment={experiment}", "optimizer=sgd_momentum").optimizer.lr == written


def test_an_optimizer_config_without_a_default_lr_names_what_to_add(make_cfg):
    cfg = make_cfg("optimizer=nadam", "~optimizer.default_lr")  # a user's file with `lr: ${lr}` only
    found = problems(cfg)
    assert any(line.startswith("lr: not given") and "default_lr" in line for line in found), found
    assert not any("lr: not given" in line for line in problems(make_cfg("optimizer=adam", "lr=0.01")))


def test_a_grid_over_optimizers_records_each_ones_lr(tmp_path: Path):
    multirun(main, tmp_path, *TINY, "optimizer=sgd,adam,rmsprop")
    lrs = {}
    for job in sorted(tmp_path.glob("[0-9]*")):
        cfg = OmegaConf.load(job / ".hydra" / "config.yaml")
        lrs[cfg.optimizer.name] = OmegaConf.to_container(cfg, resolve=True)["optimizer"]["lr"]
    assert lrs == {"sgd": 0.1, "adam": 0.001, "rmsprop": 0.001}
