"""`hydra.sweeper.fuse=K`: an Optuna worker trains up to K trials as one stacked model, end to end, in-process
(conftest's ``train_cli``)."""
import optuna
import pytest
import yaml

from sweeplab.jobfiles import read_metrics

pytestmark = pytest.mark.slow

OPTUNA = ["-m", "hydra/sweeper=optuna", "data=synthetic", "data.n_train=600", "data.n_test=200", "epochs=4",
          "batch_size=64", "model.width=32"]


def test_fused_trials_report_and_prune_each_member_and_keep_the_budget(tmp_path, train_cli):
    result = train_cli(
        *OPTUNA, "hydra.sweeper.n_trials=10", "hydra.sweeper.fuse=4", "hydra/sweeper/sampler=random",
        "hydra.sweeper.sampler.seed=1", "hydra/sweeper/pruner=median", "hydra.sweeper.pruner.n_startup_trials=2",
        "hydra.sweeper.max_failure_rate=0.5", "lr=choice(0.5, 0.05, 0.005, 1e12)", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    (sweep_dir,) = (tmp_path / "outputs" / "sweeps").iterdir()  # an unnamed study: a dir of its own
    study = optuna.load_study(study_name=None, storage=f"sqlite:///{sweep_dir / 'optuna.db'}")
    assert len(study.trials) == 10  # 4 + 4 + the 2 the budget has left
    assert "fused #0,#1,#2,#3: 4 members" in result.stdout and "fused #8,#9: 2 members" in result.stdout
    states = {t.state.name for t in study.trials}
    assert {"COMPLETE", "PRUNED", "FAIL"} <= states, states
    for trial in study.trials:
        metrics = read_metrics(sweep_dir / str(trial.number))
        assert metrics["status"] == {"COMPLETE": "ok", "PRUNED": "pruned", "FAIL": "diverged"}[trial.state.name]
        # each member reported its own epochs to its own trial
        assert sorted(trial.intermediate_values) == list(range(1, metrics["epochs_completed"] + 1))
        if trial.state.name == "COMPLETE":
            assert trial.value == metrics["best_val_acc"]
            assert trial.intermediate_values[metrics["best_epoch"]] == metrics["best_val_acc"]
    pruned = [t for t in study.trials if t.state.name == "PRUNED"]
    for trial in pruned:  # a pruned member left its group early; the complete ones in it went on to epoch 4
        assert len(trial.intermediate_values) < 4
    assert (sweep_dir / "optimization_results.yaml").is_file() and (sweep_dir / "trials.csv").is_file()


def test_fuse_0_is_one_clear_error(tmp_path, train_cli):
    result = train_cli(*OPTUNA, "hydra.sweeper.fuse=0", "lr=interval(0.01, 0.1)", cwd=tmp_path)
    assert result.returncode != 0
    assert "hydra.sweeper.fuse=0: must be an integer >= 1" in result.stderr
    assert "Traceback" not in result.stderr


def test_fused_trials_on_the_grid_sampler_run_every_point_once_and_finish_cleanly(tmp_path, train_cli):
    result = train_cli(
        *OPTUNA, "epochs=1", "hydra/sweeper/sampler=grid", "hydra.sweeper.fuse=4", "hydra.sweeper.n_trials=8",
        "lr=choice(0.1, 0.05, 0.02, 0.01)", "seed=choice(0, 1)", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    (sweep_dir,) = (tmp_path / "outputs" / "sweeps").iterdir()  # an unnamed study: a dir of its own
    study = optuna.load_study(study_name=None, storage=f"sqlite:///{sweep_dir / 'optuna.db'}")
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 8
    assert len({(t.params["lr"], t.params["seed"]) for t in study.trials}) == 8  # every grid point once
    results = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
    assert results["finished"] == 8 and results["states"]["complete"] == 8
