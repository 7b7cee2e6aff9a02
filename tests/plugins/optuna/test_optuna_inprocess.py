"""The Optuna sweeper in-process, as Hydra's own plugin tests run theirs: Hydra's sweep runner, the
basic launcher, a trivial task instead of training, a real SQLite study; milliseconds per trial.

Behaviour is observed through the public sweeper only (the study in its storage, the jobs' configs
and the files in the sweep dir), never through the sweeper's internals.
"""
from __future__ import annotations

import fcntl
import math
import os
import signal
import threading
import time
from typing import Any, Callable

import optuna
import pytest
import yaml
from hydra.errors import CompactHydraException
from omegaconf import DictConfig

from conftest import REPO, file_states, trial_states

CONF = str(REPO / "tests" / "sweeper_conf")
FAILING_X = 10.0  # the trivial task raises for x >= this


def value_of(cfg: DictConfig) -> float:
    """The trivial task: fails for a large x, else a number every key of the config moves."""
    if cfg.x >= FAILING_X:
        raise ValueError(f"x={cfg.x} is too large")
    return -((cfg.x - 0.3) ** 2) + cfg.y + (0.5 if cfg.name == "b" else 0.0)


@pytest.fixture
def sweep(hydra_sweep_runner, hydra_restore_singletons, tmp_path) -> Callable[..., optuna.Study]:
    """Run a study of the trivial task with these overrides (and a config of tests/sweeper_conf/) into
    tmp_path/sweep; return the study. The jobs' configs are kept in ``sweep.configs`` by job number."""
    sweep_dir = tmp_path / "sweep"
    configs: dict[int, DictConfig] = {}

    def task(cfg: DictConfig) -> Any:
        from hydra.core.hydra_config import HydraConfig

        configs[HydraConfig.get().job.num] = cfg
        return value_of(cfg)

    def run(*overrides: str, config: str = "trivial", task_function: Callable[[DictConfig], Any] = task
            ) -> optuna.Study:
        runner = hydra_sweep_runner(
            calling_file=__file__, calling_module=None, task_function=task_function, config_path=CONF,
            config_name=config, overrides=["hydra/sweeper/sampler=random", "hydra.sweeper.sampler.seed=0",
                                              *overrides], temp_dir=sweep_dir,
        )
        runner.__enter__()  # runs the study; its __exit__ would delete the sweep dir the tests read
        return optuna.load_study(study_name=None, storage=f"sqlite:///{sweep_dir / 'optuna.db'}")

    run.dir = sweep_dir
    run.configs = configs
    return run


def test_the_study_runs_exactly_n_trials_and_each_value_is_the_jobs(sweep):
    study = sweep("hydra.sweeper.n_trials=5", "x=interval(-1, 1)", "name=choice(a, b)")
    assert trial_states(study) == ["COMPLETE"] * 5
    for trial in study.trials:
        cfg = sweep.configs[trial.number]
        assert (cfg.x, cfg.name) == (trial.params["x"], trial.params["name"])
        assert trial.value == value_of(cfg)
    assert sorted(p.name for p in sweep.dir.iterdir() if p.is_dir()) == ["0", "1", "2", "3", "4"]


def test_results_are_written_into_the_sweep_dir(sweep):
    study = sweep("hydra.sweeper.n_trials=3", "x=interval(-1, 1)")
    results = yaml.safe_load((sweep.dir / "optimization_results.yaml").read_text())
    best = study.best_trial
    assert results["best"] == {"number": best.number, "values": [best.value], "params": best.params,
                               "job_dir": str(sweep.dir / str(best.number))}
    assert results["finished"] == 3
    rows = (sweep.dir / "trials.csv").read_text().splitlines()
    assert len(rows) == 4 and "params_x" in rows[0]


def test_a_rerun_resumes_and_runs_only_the_rest_of_the_budget(sweep):
    sweep("hydra.sweeper.n_trials=2", "x=interval(-1, 1)")
    study = sweep("hydra.sweeper.n_trials=5", "x=interval(-1, 1)")
    assert trial_states(study) == ["COMPLETE"] * 5
    assert sorted(sweep.configs) == [0, 1, 2, 3, 4]  # job numbers continue from the trial numbers
    again = sweep("hydra.sweeper.n_trials=5", "x=interval(-1, 1)")
    assert len(again.trials) == 5  # the budget is spent: nothing more runs


def test_a_resumed_seeded_study_never_redraws_its_params_and_touches_no_finished_trial(sweep):
    """A rerun's sampler gets the same seed (0 here) as the first run's: it must not propose the finished
    trials' params again (per-trial seeds, test_optuna_internals.py), nor touch their job dirs."""
    space = ["x=tag(log, interval(1e-3, 0.5))", "y=int(interval(8, 64))"]
    first_dirs = [sweep.dir / str(t.number) for t in sweep("hydra.sweeper.n_trials=3", *space).trials]
    finished = file_states(*first_dirs)
    study = sweep("hydra.sweeper.n_trials=6", *space)
    assert trial_states(study) == ["COMPLETE"] * 6
    trials = study.trials
    assert all(later.params != earlier.params for later in trials[3:] for earlier in trials[:3])
    assert file_states(*first_dirs) == finished


def test_an_interrupt_after_the_last_trial_says_the_study_is_done(sweep, capfd):
    lock: list[Any] = []

    def last_trial_then_interrupt(cfg: DictConfig) -> float:
        from hydra.core.hydra_config import HydraConfig

        if HydraConfig.get().job.num == 1:  # the last trial: hold the workers' asking lock (README), so
            lock.append(open(sweep.dir / ".optuna.lock", "a"))  # the sweeper waits after its tell, and
            fcntl.flock(lock[0], fcntl.LOCK_EX)  # `kill PID` it once the trial is stored as finished
            threading.Thread(target=interrupt_when_finished, daemon=True).start()
        return value_of(cfg)

    def interrupt_when_finished() -> None:
        storage = f"sqlite:///{sweep.dir / 'optuna.db'}"
        while len(optuna.load_study(study_name=None, storage=storage).get_trials(
                states=(optuna.trial.TrialState.COMPLETE,))) < 2:
            time.sleep(0.02)
        os.kill(os.getpid(), signal.SIGTERM)

    try:
        study = sweep("hydra.sweeper.n_trials=2", "x=interval(-1, 1)", task_function=last_trial_then_interrupt)
    finally:
        for file in lock:
            file.close()
    assert trial_states(study) == ["COMPLETE", "COMPLETE"]
    out = capfd.readouterr().out
    assert "the study is done: all n_trials=2 trials finished" in out
    assert "to resume the study" not in out


def test_a_rerun_with_another_search_space_is_refused(sweep):
    sweep("hydra.sweeper.n_trials=1", "x=choice(0.1, 0.2)")
    with pytest.raises(CompactHydraException, match=r"was started with another search space \(x: was "
                                                    r"CategoricalDistribution\(choices=\(0.1, 0.2\)\)"):
        sweep("hydra.sweeper.n_trials=2", "x=choice(0.1, 0.3)")
    assert len(optuna.load_study(study_name=None, storage=f"sqlite:///{sweep.dir / 'optuna.db'}").trials) == 1


def test_the_grid_sampler_runs_each_combination_once_and_no_more(sweep):
    study = sweep("hydra/sweeper/sampler=grid", "hydra.sweeper.n_trials=50", "x=choice(0.1, 0.2)", "y=range(0, 3)")
    combos = sorted((t.params["x"], t.params["y"]) for t in study.trials)
    assert combos == [(0.1, 0), (0.1, 1), (0.1, 2), (0.2, 0), (0.2, 1), (0.2, 2)]


def test_several_objectives_give_a_pareto_set(sweep):
    def two_values(cfg: DictConfig) -> tuple[float, float]:
        return cfg.x, -cfg.x * cfg.x

    study = sweep("hydra/sweeper/sampler=nsgaii", "hydra.sweeper.direction=[maximize,maximize]",
                  "hydra.sweeper.n_trials=4", "x=interval(-1, 1)", task_function=two_values)
    results = yaml.safe_load((sweep.dir / "optimization_results.yaml").read_text())
    assert {entry["number"] for entry in results["pareto"]} == {t.number for t in study.best_trials}
    assert all(t.values == [t.params["x"], -t.params["x"] ** 2] for t in study.trials)


# ---------------------------------------------------------------- failures


def test_a_failing_job_is_a_fail_trial_with_its_reason_and_the_study_goes_on(sweep):
    study = sweep("hydra.sweeper.n_trials=6", "hydra.sweeper.max_failure_rate=0.5", f"x=choice(0.0, {FAILING_X})")
    failed = [t for t in study.trials if t.state.name == "FAIL"]
    assert len(study.trials) == 6 and 1 <= len(failed) <= 3
    for trial in failed:
        assert trial.params["x"] == FAILING_X
        assert trial.user_attrs["fail_reason"] == f"ValueError: x={FAILING_X} is too large"


def test_too_many_failures_stop_the_study_with_one_clear_message(sweep):
    with pytest.raises(CompactHydraException) as raised:
        sweep("hydra.sweeper.n_trials=6", "hydra.sweeper.max_failure_rate=0.3", f"x={FAILING_X}", "y=range(0, 3)")
    assert "study stopped: 2 trials failed, more than max_failure_rate=0.3 of n_trials=6 allows (1)" in str(
        raised.value)
    study = optuna.load_study(study_name=None, storage=f"sqlite:///{sweep.dir / 'optuna.db'}")
    assert trial_states(study) == ["FAIL", "FAIL"]


def test_a_study_whose_last_trial_fails_finished_its_budget_and_ends_without_error(sweep, capfd):
    def last_fails(cfg: DictConfig) -> float:
        from hydra.core.hydra_config import HydraConfig

        return value_of(cfg) if HydraConfig.get().job.num == 0 else math.nan

    study = sweep("hydra.sweeper.n_trials=2", "hydra.sweeper.max_failure_rate=0.25", "x=interval(-1, 1)",
                  task_function=last_fails)  # no exception: the budget is spent, one failure is an outcome
    assert trial_states(study) == ["COMPLETE", "FAIL"]
    out = capfd.readouterr().out
    assert "2 finished (1 complete, 0 pruned, 1 failed)" in out and "to resume the study" not in out


def test_a_nan_result_is_a_failed_trial(sweep):
    study = sweep("hydra.sweeper.n_trials=2", "hydra.sweeper.max_failure_rate=1", "x=interval(-1, 1)",
                  task_function=lambda cfg: math.nan)
    assert trial_states(study) == ["FAIL", "FAIL"]
    assert all(t.user_attrs["fail_reason"] == "the job returned nan" for t in study.trials)


# ---------------------------------------------------------------- search space


def test_fixed_values_reach_every_job_and_the_command_line_wins_over_the_file(sweep):
    study = sweep("hydra.sweeper.n_trials=2", "x=choice(0.25, 0.75)", "y=2", config="file_params")
    assert all(t.params["x"] in (0.25, 0.75) for t in study.trials)
    assert all((cfg.name, cfg.y) == ("b", 2) for cfg in sweep.configs.values())


def test_without_a_search_space_the_default_one_less_the_fixed_keys_is_searched(sweep):
    study = sweep("hydra.sweeper.n_trials=2", "y=3", config="default_space")
    assert all(set(t.params) == {"x"} for t in study.trials)
    assert all(cfg.y == 3 for cfg in sweep.configs.values())


def test_a_file_with_only_fixed_params_keeps_them_when_the_default_space_is_searched(sweep):
    study = sweep("hydra.sweeper.n_trials=2", config="fixed_params")
    assert all(set(t.params) == {"x"} for t in study.trials)  # y is fixed by the file, so not searched
    assert all((cfg.name, cfg.y) == ("b", 1) for cfg in sweep.configs.values())


def test_a_delete_override_reaches_the_job_unchanged(sweep):
    sweep("hydra.sweeper.n_trials=1", "x=interval(-1, 1)", "~extra")
    (job_dir,) = [p for p in sweep.dir.iterdir() if p.is_dir()]
    assert "~extra" in yaml.safe_load((job_dir / ".hydra" / "overrides.yaml").read_text())
    assert "extra" not in sweep.configs[0]


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["x=tag(log, interval(-1, 1))"], "search space: x=tag(log, interval(-1, 1)): a log scale needs low > 0"),
        (["hydra.sweeper.n_trials=0", "x=interval(0.1, 1)"], "hydra.sweeper.n_trials=0: must be an integer >= 1"),
        (["hydra.sweeper.direction=up", "x=interval(0.1, 1)"],
         "hydra.sweeper.direction=up: must be maximize or minimize"),
        (["hydra/sweeper/sampler=grid", "x=interval(0.1, 1)"], "x: the grid sampler needs discrete values"),
        (["y=3"], "search space is empty"),
    ],
)
def test_bad_sweeper_input_is_one_compact_error(sweep, overrides, message):
    with pytest.raises(CompactHydraException) as raised:
        sweep(*overrides)
    assert message in str(raised.value)
