"""Every study in sweeps/ and every experiment in conf/experiment/ composes and runs, shrunk to one
tiny job on synthetic data (as lightning-hydra-template's test_sweeps.py does): a grid study runs
the first value of each key it sweeps, an Optuna study one trial through the real sweeper."""
from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig

import sweeplab.job.task
from conftest import CONF, REPO, TINY, compose_train
from sweeplab.job.task import run
from sweeplab.jobfiles import read_metrics

SHRUNK = [*TINY, "epochs=1"]
EXPERIMENTS = sorted(path.stem for path in (CONF / "experiment").glob("*.yaml"))
STUDIES = sorted(path.stem for path in (REPO / "sweeps").glob("*.yaml"))
OPTUNA_SWEEPER = "hydra_plugins.sweeplab_optuna_sweeper.optuna_sweeper.OptunaSweeper"


def first_values(params: DictConfig) -> list[str]:
    """``{lr: "0.1,0.01", seed: "range(0,5)"}`` -> ``["lr=0.1", "seed=0"]``: the study's first job."""
    parser = OverridesParser.create()
    firsts = []
    for key, value in params.items():
        (override,) = parser.parse_overrides([f"{key}={value}"])
        first = (next(iter(override.sweep_string_iterator())) if override.is_sweep_override()
                 else override.get_value_element_as_str())
        firsts.append(f"{key}={first}")
    return firsts


def test_the_lists_are_not_empty():
    assert len(EXPERIMENTS) >= 6 and len(STUDIES) >= 7


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_experiment_runs_one_tiny_job(make_cfg, tmp_path, name):
    run(make_cfg(f"experiment={name}", *SHRUNK), tmp_path)
    assert read_metrics(tmp_path)["status"] == "ok"


@pytest.mark.parametrize("name", STUDIES)
def test_every_study_runs_its_first_job_or_trial(make_cfg, hydra_sweep_runner, tmp_path, name):
    hydra_cfg = compose_train(f"+sweep={name}", hydra_config=True).hydra
    if hydra_cfg.sweeper._target_ != OPTUNA_SWEEPER:
        firsts = first_values(hydra_cfg.sweeper.params)
        assert firsts, f"sweeps/{name}.yaml sweeps nothing"
        run(make_cfg(f"+sweep={name}", *firsts, *SHRUNK), tmp_path)
        assert read_metrics(tmp_path)["status"] == "ok"
        return
    sweep_dir = tmp_path / "sweep"
    runner = hydra_sweep_runner(
        calling_file=__file__, calling_module=None, task_function=sweeplab.job.task.main, config_path=str(CONF),
        config_name="train", overrides=[f"+sweep={name}", "hydra.sweeper.n_trials=1", "hydra.sweeper.n_workers=1",
                                        *SHRUNK], temp_dir=sweep_dir,
    )
    runner.__enter__()  # runs the study; its __exit__ would delete the sweep dir read below
    study_name = hydra_cfg.sweeper.study_name
    study = optuna.load_study(study_name=study_name, storage=f"sqlite:///{Path(sweep_dir) / 'optuna.db'}")
    assert [t.state.name for t in study.trials] == ["COMPLETE"]
    assert read_metrics(sweep_dir / "0")["status"] == "ok"
