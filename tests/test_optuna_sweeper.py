"""`hydra/sweeper=optuna` end to end: real train.py jobs on synthetic data, a real SQLite study."""
import optuna
import pytest
import yaml
from hydra.core.config_store import ConfigStore
from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper

from conftest import run_train
from sweeplab.jobfiles import read_metrics
from sweeplab.optuna_settings import DEFAULT_SEARCH_SPACE

pytestmark = pytest.mark.slow

# small and fast: ~0.3 s of training per trial
OPTUNA = ["-m", "hydra/sweeper=optuna", "data=synthetic", "data.n_train=600", "data.n_test=200", "epochs=4",
          "batch_size=64"]


def load(cwd, name="optuna"):
    sweep_dir = cwd / "outputs" / "sweeps" / name
    return sweep_dir, optuna.load_study(study_name=name, storage=f"sqlite:///{sweep_dir / 'optuna.db'}")


def states(study):
    return [t.state.name for t in study.trials]


def test_the_sweeper_is_discovered_and_its_config_registered():
    assert "OptunaSweeper" in [plugin.__name__ for plugin in Plugins.instance().discover(Sweeper)]
    repo = ConfigStore.instance().repo["hydra"]
    assert {"optuna.yaml", "sweeplab_optuna.yaml"} <= set(repo["sweeper"])
    assert {"tpe.yaml", "motpe.yaml", "random.yaml", "grid.yaml", "cmaes.yaml", "qmc.yaml", "nsgaii.yaml",
            "nsgaiii.yaml", "gp.yaml", "bruteforce.yaml"} <= set(repo["sweeper"]["sampler"])
    assert {"nop.yaml", "none.yaml", "median.yaml", "percentile.yaml", "successive_halving.yaml", "hyperband.yaml",
            "threshold.yaml", "patient.yaml", "wilcoxon.yaml"} <= set(repo["sweeper"]["pruner"])


def test_a_study_prunes_records_failures_and_writes_results(tmp_path):
    result = run_train(
        *OPTUNA, "hydra.sweeper.n_trials=10", "hydra/sweeper/sampler=random", "hydra.sweeper.sampler.seed=1",
        "hydra/sweeper/pruner=median", "hydra.sweeper.pruner.n_startup_trials=2", "hydra.sweeper.max_failure_rate=0.5",
        "lr=choice(0.5, 0.05, 0.005, 1e12)", "model.width=choice(16, 64)", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    sweep_dir, study = load(tmp_path)
    assert len(study.trials) == 10
    assert {"COMPLETE", "PRUNED", "FAIL"} <= set(states(study))
    for trial in study.trials:
        metrics = read_metrics(sweep_dir / str(trial.number))
        expected = {"COMPLETE": "ok", "PRUNED": "pruned", "FAIL": "diverged"}[trial.state.name]
        assert metrics["status"] == expected, trial.number
        if trial.state.name == "FAIL":
            assert trial.params["lr"] == 1e12
            assert trial.user_attrs["fail_reason"].startswith("diverged: train loss became nan")
        if trial.state.name == "PRUNED":
            assert metrics["epochs_completed"] < 4 and "pruned by MedianPruner" in metrics["reason"]
            assert max(trial.intermediate_values) == metrics["epochs_completed"]
        if trial.state.name == "COMPLETE":
            assert trial.value == metrics["best_val_acc"]
    # a live line per finished trial: number, state, params, best so far, trials left
    assert "trial 0 " in result.stdout and "10/10 finished, 0 left" in result.stdout
    assert "PRUNED after epoch" in result.stdout and "FAIL (diverged:" in result.stdout
    results = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
    best = study.best_trial
    assert results["best"] == {"number": best.number, "values": [best.value], "params": best.params,
                               "job_dir": str(sweep_dir / str(best.number))}
    assert results["finished"] == 10 and results["states"]["pruned"] == states(study).count("PRUNED")
    trials_csv = (sweep_dir / "trials.csv").read_text().splitlines()
    assert len(trials_csv) == 11 and "params_lr" in trials_csv[0]


def test_two_local_workers_share_the_budget_exactly(tmp_path):
    result = run_train(*OPTUNA, "hydra.sweeper.n_trials=5", "hydra.sweeper.n_workers=2",
                       "lr=tag(log, interval(0.01, 0.5))", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    sweep_dir, study = load(tmp_path)
    assert states(study) == ["COMPLETE"] * 5
    assert sorted(p.name for p in sweep_dir.iterdir() if p.is_dir()) == ["0", "1", "2", "3", "4"]


def test_grid_sampler_runs_each_combination_once(tmp_path):
    result = run_train(*OPTUNA, "hydra/sweeper/sampler=grid", "hydra.sweeper.n_trials=50",
                       "lr=choice(0.1, 0.01)", "model.width=choice(16, 32)", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    _, study = load(tmp_path)
    combos = sorted((t.params["lr"], t.params["model.width"]) for t in study.trials)
    assert combos == [(0.01, 16), (0.01, 32), (0.1, 16), (0.1, 32)]


def test_several_objectives_give_a_pareto_set(tmp_path):
    result = run_train(*OPTUNA, "hydra.sweeper.n_trials=4", "hydra/sweeper/sampler=nsgaii",
                       "hydra.sweeper.direction=[maximize,minimize]", "objective=[best_val_acc,params]",
                       "model.width=choice(8, 16, 32, 64)", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    sweep_dir, study = load(tmp_path)
    results = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
    assert {entry["number"] for entry in results["pareto"]} == {t.number for t in study.best_trials}
    for trial in study.trials:
        assert trial.values[1] == read_metrics(sweep_dir / str(trial.number))["params"]


def test_too_many_failures_stop_the_study_with_a_clear_message(tmp_path):
    result = run_train(*OPTUNA, "hydra.sweeper.n_trials=6", "hydra.sweeper.max_failure_rate=0.3",
                       "lr=choice(1e12, 1e13)", cwd=tmp_path)
    assert result.returncode != 0
    assert "study stopped: 2 trials failed, more than max_failure_rate=0.3 of n_trials=6 allows (1)" in result.stderr
    assert "Traceback" not in result.stderr
    _, study = load(tmp_path)
    assert states(study) == ["FAIL", "FAIL"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["lr=tag(log, interval(-1, 1))"], "search space: lr=tag(log, interval(-1, 1)): a log scale needs low > 0"),
        (["lr=interval(0.1)"], "Error parsing override 'lr=interval(0.1)'"),  # Hydra's own parser
        (["hydra.sweeper.n_trials=0", "lr=interval(0.1, 1)"], "hydra.sweeper.n_trials=0: must be an integer >= 1"),
        (["hydra.sweeper.direction=up", "lr=interval(0.1, 1)"], "hydra.sweeper.direction=up: must be maximize or minimize"),
        (["hydra/sweeper/sampler=grid", "lr=interval(0.1, 1)"], "lr: the grid sampler needs discrete values"),
        (["hydra.sweeper.default_params=null", "epochs=3"], "search space is empty"),
    ],
)
def test_bad_sweeper_input_gives_one_clear_error(tmp_path, args, message):
    result = run_train(*OPTUNA, *args, cwd=tmp_path)
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_a_rerun_with_another_search_space_is_refused(tmp_path):
    first = run_train(*OPTUNA, "hydra.sweeper.n_trials=1", "lr=choice(0.1, 0.2)", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    second = run_train(*OPTUNA, "hydra.sweeper.n_trials=2", "lr=choice(0.1, 0.3)", cwd=tmp_path)
    assert second.returncode != 0
    assert "was started with another search space (lr: was CategoricalDistribution(choices=(0.1, 0.2))" in second.stderr
    _, study = load(tmp_path)
    assert len(study.trials) == 1


def test_without_a_search_space_the_default_one_is_searched(tmp_path):
    """DESIGN's `python train.py -m hydra/sweeper=optuna hydra.sweeper.n_trials=30`, shrunk."""
    result = run_train(*OPTUNA, "hydra.sweeper.n_trials=2", "model.width=32", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "no search space given: searching hydra.sweeper.default_params" in result.stdout + result.stderr
    _, study = load(tmp_path)
    assert len(study.trials) == 2
    for trial in study.trials:  # the default space, less the keys the command fixed
        assert set(trial.params) == set(DEFAULT_SEARCH_SPACE) - {"model.width", "batch_size"}
