"""Hydra's submitit launcher (`pip install -e '.[cluster]'`): a grid through real submitit jobs, and the
SLURM example config."""
import importlib.util
import os
import signal
import subprocess
import sys
import time

import pytest
from omegaconf import OmegaConf

from conftest import REPO, TINY, compose_train, file_states, missing_environment, run_train
from sweeplab.jobfiles import read_metrics


@pytest.fixture(autouse=True)
def submitit_launcher() -> None:
    if importlib.util.find_spec("hydra_plugins.hydra_submitit_launcher") is None:
        missing_environment("needs the cluster extra: pip install -e '.[cluster]'")


@pytest.mark.slow
def test_submitit_local_runs_a_grid_and_resumes_it(tmp_path):
    sweep = tmp_path / "sweep"
    grid = ["-m", "hydra/launcher=submitit_local", f"hydra.sweep.dir={sweep}", *TINY, "epochs=1"]
    result = run_train(*grid, "lr=0.1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert read_metrics(sweep / "0")["status"] == "ok"
    finished = file_states(sweep / "0")

    result = run_train(*grid, "lr=0.1,0.02", "hydra.sweeper.extend=true", cwd=tmp_path)  # a grown grid
    assert result.returncode == 0, result.stderr[-2000:]
    assert "1 finished jobs skipped, 1 to run (0 failed, 0 interrupted, 1 new)" in result.stdout
    assert read_metrics(sweep / "1")["status"] == "ok"
    assert OmegaConf.load(sweep / "1" / ".hydra" / "config.yaml").lr == 0.02
    assert file_states(sweep / "0") == finished


def test_the_slurm_example_is_submitit_slurm_with_its_resources():
    cfg = compose_train("hydra/launcher=slurm", "hydra.launcher.partition=gpu", hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_ == "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    assert (launcher.partition, launcher.cpus_per_task, launcher.mem_gb, launcher.timeout_min) == ("gpu", 2, 4, 60)


@pytest.mark.slow
def test_an_optuna_study_runs_its_trials_as_submitit_jobs_that_report_epochs_and_get_pruned(tmp_path):
    import optuna

    sweep = tmp_path / "sweep"
    result = run_train(
        "-m", "hydra/sweeper=optuna", "hydra/launcher=submitit_local", "hydra.sweeper.n_workers=2", "threads=1",
        *TINY, "hydra.sweeper.n_trials=4", "hydra/sweeper/sampler=random", "hydra.sweeper.sampler.seed=0",
        "hydra/sweeper/pruner=median", "hydra.sweeper.pruner.n_startup_trials=2",
        "hydra.sweeper.pruner.n_warmup_steps=0", "lr=choice(0.1, 0.0001)", f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    # seed 0 draws lr 0.0001, 0.1, 0.1, 0.0001: trial 3 starts once two trials have ended, and then falls
    # below their median at its first epoch
    assert result.returncode == 0, result.stderr[-3000:]
    assert "LocalLauncher: 2 trial(s) in flight" in result.stdout + result.stderr
    trials = optuna.load_study(study_name=None, storage=f"sqlite:///{sweep / 'optuna.db'}").trials
    assert len(trials) == 4 and {t.state.name for t in trials} <= {"COMPLETE", "PRUNED"}
    assert trials[3].state.name == "PRUNED"
    assert len(list((sweep / ".submitit").glob("*/*_result.pkl"))) == 4  # one submitit job (a process) per trial
    for trial in trials:
        # each job reported every epoch to its trial through the storage
        metrics = read_metrics(sweep / str(trial.number))
        assert sorted(trial.intermediate_values) == list(range(1, metrics["epochs_completed"] + 1))
        assert metrics["status"] == {"COMPLETE": "ok", "PRUNED": "pruned"}[trial.state.name]


@pytest.mark.slow
def test_sigterm_to_a_submitit_job_marks_it_interrupted_and_the_sweep_says_how_to_resume(tmp_path):
    # submitit's own SIGTERM handler only logs the signal: without ours the job would train on (on SLURM
    # until SIGKILL, leaving `running`); a rerun then resumes it as any interrupted job
    sweep = tmp_path / "sweep"
    grid = ["-m", "hydra/launcher=submitit_local", f"hydra.sweep.dir={sweep}", "data=synthetic", "data.n_train=2000",
            "data.n_test=200", "batch_size=32", "epochs=30", "checkpoint=true", "seed=0"]
    proc = subprocess.Popen([sys.executable, str(REPO / "train.py"), *grid], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not (sweep / "0" / "checkpoint.pt").is_file() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    # the submitit job's id is its controller's pid; SLURM's scancel, like this, signals the job, which
    # forwards SIGTERM to the task
    (job_id,) = [int(path.name) for path in (sweep / ".submitit").iterdir() if path.name.isdigit()]
    os.kill(job_id, signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 1
    assert f"sweep interrupted: 0 of 1 jobs finished, 1 left. Rerun the same command with hydra.sweep.dir={sweep}" \
        in stderr
    assert "Traceback" not in stderr
    metrics = read_metrics(sweep / "0")
    assert metrics["status"] == "interrupted", metrics
    assert metrics["epochs_completed"] is None and metrics["reason"].startswith("KeyboardInterrupt")
