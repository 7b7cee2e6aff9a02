"""``Composer.check`` (how the fused launcher checks a batch's later windows before any job runs) raises
for a job exactly what composing it raises (Hydra's own error), and nothing for a job that composes,
whatever jobs it checked before: a job's values are applied over the previous job's only when both set
the same keys."""
from __future__ import annotations

from typing import Iterator

import pytest
from hydra._internal.hydra import Hydra
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode

from conftest import REPO
from sweeplab.sweep.compose import Composer

SMALL = ["data=synthetic", "epochs=1"]
JOBS = [  # in this order: good and bad jobs of one structure and of others, keys set alike and not
    ["seed=0", *SMALL], ["seed=1", *SMALL], ["seed=wrong", *SMALL], ["seed=2", *SMALL],
    ["seed=3", "model.hidden=[8,8]", *SMALL], ["seed=4", "model.hidden.1=4", *SMALL],
    ["seed=5", "model.hidden=[8]", *SMALL], ["seed=6", "model.hidden.1=4", *SMALL],
    ["seed=7", "no_such_key=1", *SMALL], ["seed=8", *SMALL], ["activation=tanh", "seed=9", *SMALL],
    ["activation=no_such_activation", "seed=10", *SMALL], ["activation=tanh", "model.width=wide", *SMALL],
    ["activation=tanh", "seed=11", *SMALL], ["+note=1", "seed=12", *SMALL],
]


@pytest.fixture
def composer(tmp_path) -> Iterator[tuple[Hydra, Composer]]:
    saved = HydraConfig.instance().cfg
    hydra = Hydra.create_main_hydra_file_or_module(
        calling_file=str(REPO / "train.py"), calling_module=None, config_path="conf", job_name="train")
    master = hydra.compose_config("train", [*SMALL, f"hydra.sweep.dir={tmp_path}", "seed=0,1"],
                                  run_mode=RunMode.MULTIRUN, with_log_configuration=False)
    HydraConfig.instance().set_config(master)
    yield hydra, Composer(hydra.config_loader, master)
    GlobalHydra.instance().clear()
    HydraConfig.instance().cfg = saved


def outcome(compose, overrides: list[str]) -> str:
    try:
        compose(overrides)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return "composes"


def test_check_raises_what_composing_the_job_raises(composer):
    hydra, checker = composer
    master = checker.master
    outcomes = [outcome(checker.check, job) for job in JOBS * 2]  # the second round: every structure known
    expected = [outcome(lambda o: hydra.config_loader.load_sweep_config(master, o), job) for job in JOBS * 2]
    assert outcomes == expected
    # seed=wrong, model.hidden.1 of a null model.hidden (twice: once after a job that set it to a list, which a
    # reused copy would still hold), no_such_key, no_such_activation and model.width=wide fail; the rest compose
    assert outcomes.count("composes") == 2 * 9
