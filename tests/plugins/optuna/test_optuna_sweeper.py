"""`hydra/sweeper=optuna` end to end: real train.py jobs on synthetic data, a real SQLite study.

Training with pruning and what the user sees run train.py in-process (conftest's ``train_cli``); forked
local workers, in a process of their own. The sweeper's own behaviour is tested with a trivial task in
test_optuna_inprocess.py."""
import optuna
import pytest
import yaml
from hydra.core.config_store import ConfigStore
from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper

from conftest import run_train, trial_states
from sweeplab.jobfiles import read_metrics

pytestmark = pytest.mark.slow

# small and fast: ~0.3 s of training per trial
OPTUNA = ["-m", "hydra/sweeper=optuna", "data=synthetic", "data.n_train=600", "data.n_test=200", "epochs=4",
          "batch_size=64"]


def load(cwd, name=None):
    """The study named ``name`` in its sweep dir; without a name, the one study run in ``cwd``."""
    (sweep_dir,) = [cwd / "outputs" / "sweeps" / name] if name else (cwd / "outputs" / "sweeps").iterdir()
    return sweep_dir, optuna.load_study(study_name=name, storage=f"sqlite:///{sweep_dir / 'optuna.db'}")


def test_the_sweeper_is_discovered_and_its_config_registered():
    assert "OptunaSweeper" in [plugin.__name__ for plugin in Plugins.instance().discover(Sweeper)]
    repo = ConfigStore.instance().repo["hydra"]
    assert {"optuna.yaml", "sweeplab_optuna.yaml"} <= set(repo["sweeper"])
    assert {"tpe.yaml", "motpe.yaml", "random.yaml", "grid.yaml", "cmaes.yaml", "qmc.yaml", "nsgaii.yaml",
            "nsgaiii.yaml", "gp.yaml", "bruteforce.yaml"} <= set(repo["sweeper"]["sampler"])
    assert {"nop.yaml", "none.yaml", "median.yaml", "percentile.yaml", "successive_halving.yaml", "hyperband.yaml",
            "threshold.yaml", "patient.yaml", "wilcoxon.yaml"} <= set(repo["sweeper"]["pruner"])


def test_a_study_prunes_records_failures_and_writes_results(tmp_path, train_cli):
    result = train_cli(
        *OPTUNA, "hydra.sweeper.n_trials=10", "hydra/sweeper/sampler=random", "hydra.sweeper.sampler.seed=1",
        "hydra/sweeper/pruner=median", "hydra.sweeper.pruner.n_startup_trials=2", "hydra.sweeper.max_failure_rate=0.5",
        "lr=choice(0.5, 0.05, 0.005, 1e12)", "model.width=choice(16, 64)", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    sweep_dir, study = load(tmp_path)
    assert len(study.trials) == 10
    assert {"COMPLETE", "PRUNED", "FAIL"} <= set(trial_states(study))
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
    assert results["finished"] == 10 and results["states"]["pruned"] == trial_states(study).count("PRUNED")
    trials_csv = (sweep_dir / "trials.csv").read_text().splitlines()
    assert len(trials_csv) == 11 and "params_lr" in trials_csv[0]


def test_two_local_workers_share_the_budget_exactly(tmp_path):
    result = run_train(*OPTUNA, "hydra.sweeper.n_trials=5", "hydra.sweeper.n_workers=2",
                       "lr=tag(log, interval(0.01, 0.5))", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    sweep_dir, study = load(tmp_path)
    assert trial_states(study) == ["COMPLETE"] * 5
    assert sorted(p.name for p in sweep_dir.iterdir() if p.is_dir()) == ["0", "1", "2", "3", "4"]
    # both workers ran trials: some two trials ran at the same time
    assert any(a.datetime_start < b.datetime_complete and b.datetime_start < a.datetime_complete
               for a in study.trials for b in study.trials if a.number < b.number)


def test_bad_sweeper_input_ends_with_one_line_and_no_traceback(tmp_path, train_cli):
    """The message itself is tested on the sweeper (test_optuna_inprocess.py); here, what the user sees."""
    result = train_cli(*OPTUNA, "lr=tag(log, interval(-1, 1))", cwd=tmp_path)
    assert result.returncode != 0
    assert "search space: lr=tag(log, interval(-1, 1)): a log scale needs low > 0" in result.stderr
    assert "Traceback" not in result.stderr
