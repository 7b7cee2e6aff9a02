"""`hydra.sweeper.fuse=K` killed with kill -9 mid-batch, then the same command again: the study resumes
exactly (every grid point once, the budget kept, the report's job counts equal to the study's). The killed
run needs a process of its own; the rerun runs in-process (conftest's ``train_cli``)."""
import signal
import subprocess

import optuna
import pytest
from hold import held_at

from conftest import TINY, signal_when_held, start_held_train
from sweeplab.jobfiles import read_metrics
from sweeplab.report.collect import collect

pytestmark = pytest.mark.slow

STUDY = ["-m", "hydra/sweeper=optuna", "hydra.sweeper.study_name=fused", "hydra.sweeper.heartbeat_interval=1",
         "hydra.sweeper.grace_period=3", "hydra/sweeper/sampler=grid", "hydra.sweeper.sampler.seed=0",
         *TINY, "epochs=2"]


def kill_9_when_held(tmp_path, *args: str) -> None:
    with open(tmp_path / "first.log", "w") as log:
        proc = start_held_train(*args, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
        signal_when_held(proc, tmp_path, signal.SIGKILL, log=tmp_path / "first.log")
    assert proc.returncode == -signal.SIGKILL


def resumed_study(train_cli, tmp_path, *args: str) -> tuple[list[optuna.trial.FrozenTrial], dict[str, int]]:
    """Rerun ``args`` to the end; the study's trials and the report's job statuses (counts)."""
    rerun = train_cli(*args, cwd=tmp_path)
    assert rerun.returncode == 0, (rerun.stdout + rerun.stderr)[-3000:]
    sweep_dir = tmp_path / "outputs" / "sweeps" / "fused"
    study = optuna.load_study(study_name="fused", storage=f"sqlite:///{sweep_dir / 'optuna.db'}")
    return study.trials, collect([sweep_dir]).jobs["status"].value_counts().to_dict()


def test_the_grid_sampler_runs_every_point_once_after_a_kill_in_its_first_fused_batch(tmp_path, train_cli):
    # the first 3 trials train as one model; the rerun holds nothing (hold.py), with the same overrides
    grid = ["hydra.sweeper.fuse=3", "hydra.sweeper.n_trials=6", "lr=choice(0.1, 0.05, 0.02)", "seed=choice(0, 1)",
            *held_at(1, 1)]
    kill_9_when_held(tmp_path, *STUDY, *grid)

    trials, statuses = resumed_study(train_cli, tmp_path, *STUDY, *grid)
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    assert len(complete) == 6
    assert len({(t.params["lr"], t.params["seed"]) for t in complete}) == 6  # every point once
    assert [t.state.name for t in trials[:3]] == ["FAIL"] * 3  # interrupted: retried, not counted
    assert statuses == {"ok": 6, "interrupted": 3}


def test_members_that_finished_before_the_kill_are_told_from_their_files_not_run_again(tmp_path, train_cli):
    # two widths: two groups of one, run in turn; trial 1 stands still after trial 0's job ended ok
    grid = ["hydra.sweeper.fuse=2", "hydra.sweeper.n_trials=2", "model.width=choice(16, 32)", *held_at(1, 1)]
    kill_9_when_held(tmp_path, *STUDY, *grid)
    sweep_dir = tmp_path / "outputs" / "sweeps" / "fused"
    finished = read_metrics(sweep_dir / "0")
    assert finished["status"] == "ok"

    trials, statuses = resumed_study(train_cli, tmp_path, *STUDY, *grid)
    assert [t.state.name for t in trials] == ["COMPLETE", "FAIL", "COMPLETE"]  # trial 1 interrupted, retried
    assert trials[0].value == finished["best_val_acc"]  # the objective, from its metrics.json
    assert read_metrics(sweep_dir / "0") == finished  # not run again
    assert statuses == {"ok": 2, "interrupted": 1}
