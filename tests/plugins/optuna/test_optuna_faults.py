"""Optuna studies off the default path, end to end: other launchers and job dirs, reruns, kill -9.

Each rerun asserts that no finished job's files changed (bytes and mtimes before and after). A killed run
or a launcher's worker processes need a process of their own; a rerun runs in-process (conftest's
``train_cli``)."""
import signal
from pathlib import Path

import optuna
import pytest

from conftest import RESUME_COMMAND, run_train, start_then_signal
from sweeplab.jobfiles import read_metrics

pytestmark = pytest.mark.slow

# the resume tests' study (a kill lands mid-trial) on a 2 x 2 grid
GRID = [arg for arg in RESUME_COMMAND
        if not arg.startswith(("hydra/sweeper/sampler=", "hydra.sweeper.sampler.", "lr="))]
GRID += ["hydra/sweeper/sampler=grid", "lr=choice(0.05, 0.1)", "model.width=choice(16, 32)"]
TINY = ["data=synthetic", "data.n_train=600", "data.n_test=200", "epochs=4", "batch_size=64"]


def study_of(sweep_dir: Path, name: str | None = None) -> optuna.Study:
    """The study ``name`` in the sweep dir's own storage; without a name, the one study there."""
    return optuna.load_study(study_name=name, storage=f"sqlite:///{sweep_dir / 'optuna.db'}")


def finished_files(study: optuna.Study) -> dict[Path, tuple[bytes, int]]:
    """Every file of every finished trial's job dir, with its bytes and mtime."""
    files = {}
    for trial in study.trials:
        if trial.state.is_finished() and "job_dir" in trial.user_attrs:
            for path in Path(trial.user_attrs["job_dir"]).rglob("*"):
                if path.is_file():
                    files[path] = (path.read_bytes(), path.stat().st_mtime_ns)
    return files


def test_joblib_trials_run_in_parallel_report_per_epoch_and_get_pruned_in_any_job_dir(tmp_path):
    sweep_dir = tmp_path / "sweep"
    result = run_train(
        "-m", "hydra/sweeper=optuna", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", *TINY, "threads=1",
        "hydra.sweeper.n_trials=8", "hydra/sweeper/sampler=random", "hydra.sweeper.sampler.seed=0",
        "hydra/sweeper/pruner=median", "hydra.sweeper.pruner.n_startup_trials=2",
        "hydra.sweeper.pruner.n_warmup_steps=0",
        "lr=choice(0.1, 0.0001)", f"hydra.sweep.dir={sweep_dir}", "hydra.sweep.subdir=trial_${hydra.job.num}",
        cwd=tmp_path, timeout=240)  # the old 5-minute hang at the end would fail here
    assert result.returncode == 0, result.stderr[-3000:]
    assert "JoblibLauncher: 2 trial(s) in flight" in result.stdout + result.stderr
    study = study_of(sweep_dir)
    trials = study.trials
    assert [t.state.name for t in trials].count("PRUNED") >= 1
    assert {t.state.name for t in trials} <= {"COMPLETE", "PRUNED"}
    for trial in trials:
        # the job in a loky worker process reported each epoch to its trial through the storage
        metrics = read_metrics(Path(trial.user_attrs["job_dir"]))
        assert trial.user_attrs["job_dir"] == str(sweep_dir / f"trial_{trial.number}")
        assert max(trial.intermediate_values) == metrics["epochs_completed"]
        assert metrics["status"] == {"COMPLETE": "ok", "PRUNED": "pruned"}[trial.state.name]
    # the launcher's parallelism is used: the first two trials ran side by side
    assert trials[1].datetime_start < trials[0].datetime_complete
    assert sorted(p.name for p in sweep_dir.iterdir() if p.is_dir()) == sorted(f"trial_{n}" for n in range(8))


def test_a_seeded_grid_study_killed_mid_trial_ends_with_every_point_complete_once(tmp_path, train_cli):
    # seeded: every process orders the grid's points alike; the killed trial's point runs again
    seed = ["hydra.sweeper.sampler.seed=3"]
    code, _ = start_then_signal(tmp_path, signal.SIGKILL, command=[*GRID, *seed])
    assert code == -signal.SIGKILL
    sweep_dir = tmp_path / "outputs" / "sweeps" / "resume"
    before = finished_files(study_of(sweep_dir, "resume"))
    assert before  # trial 0 finished before the kill

    rerun = train_cli(*GRID, *seed, cwd=tmp_path)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    trials = study_of(sweep_dir, "resume").trials
    complete = sorted((t.params["lr"], t.params["model.width"]) for t in trials if t.state.name == "COMPLETE")
    assert complete == [(0.05, 16), (0.05, 32), (0.1, 16), (0.1, 32)]
    (killed,) = [t for t in trials if t.state.name == "FAIL"]
    assert "fail_reason" not in killed.user_attrs  # interrupted, and its point ran again
    assert {path: finished_files(study_of(sweep_dir, "resume"))[path] for path in before} == before
