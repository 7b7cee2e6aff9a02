"""Interrupt a study (kill -9, Ctrl-C) mid-trial, rerun the same command, and it finishes exactly."""
import signal
import subprocess

import optuna
import pytest
import yaml
from hold import held_at

from conftest import processes_left, run_train, signal_when_held, start_held_train
from sweeplab.jobfiles import METRICS, read_metrics

pytestmark = pytest.mark.slow

N_TRIALS = 4
# tiny trials; trial 1 stands still at the end of its epoch 2 (hold.py) until the test's signal, so the
# signal lands mid-trial; short heartbeats so a killed trial is found quickly
COMMAND = ["-m", "hydra/sweeper=optuna", "hydra.sweeper.study_name=resume", f"hydra.sweeper.n_trials={N_TRIALS}",
           "hydra.sweeper.heartbeat_interval=1", "hydra.sweeper.grace_period=3",
           "hydra/sweeper/sampler=random", "hydra.sweeper.sampler.seed=0", "lr=interval(0.05, 0.5)",
           "data=synthetic", "data.n_train=600", "data.n_test=200", "epochs=3", "batch_size=64", *held_at(1, 2)]


def start_then_signal(tmp_path, signum, *extra, command=COMMAND):
    """Start the sweep, wait until trial 1 stands still after its epoch 2, then send ``signum`` to the main
    process (as from a terminal, even when this test itself runs in a background job that ignores SIGINT)."""
    with open(tmp_path / "first.log", "w") as log:
        proc = start_held_train(*command, *extra, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        signal_when_held(proc, tmp_path, signum, log=tmp_path / "first.log")
    return proc.returncode, (tmp_path / "first.log").read_text()


def study_of(tmp_path):
    sweep_dir = tmp_path / "outputs" / "sweeps" / "resume"
    return sweep_dir, optuna.load_study(study_name="resume", storage=f"sqlite:///{sweep_dir / 'optuna.db'}")


def assert_resumed_exactly(tmp_path):
    result = run_train(*COMMAND, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "resuming: 1 finished" in result.stdout + result.stderr
    sweep_dir, study = study_of(tmp_path)
    states = [t.state.name for t in study.trials]
    assert states == ["COMPLETE", "FAIL", "COMPLETE", "COMPLETE", "COMPLETE"]
    assert "fail_reason" not in study.trials[1].user_attrs  # interrupted, so it does not count
    assert read_metrics(sweep_dir / "1")["status"] == "interrupted"
    assert [read_metrics(sweep_dir / str(n))["status"] for n in (0, 2, 3, 4)] == ["ok"] * 4
    results = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
    assert results["finished"] == N_TRIALS and results["states"]["interrupted"] == 1


def test_kill_9_mid_trial_then_rerun_resumes(tmp_path):
    code, _ = start_then_signal(tmp_path, signal.SIGKILL)
    assert code == -signal.SIGKILL
    sweep_dir, study = study_of(tmp_path)
    assert [t.state.name for t in study.trials] == ["COMPLETE", "RUNNING"]
    # results are written after every trial, not only at the end
    assert yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())["finished"] == 1
    assert read_metrics(sweep_dir / "1")["status"] == "running"
    assert_resumed_exactly(tmp_path)


def test_ctrl_c_mid_trial_stops_cleanly_then_rerun_resumes(tmp_path):
    code, output = start_then_signal(tmp_path, signal.SIGINT)
    assert code != 0
    assert "interrupted. Finished trials are kept in sqlite:///" in output
    assert "to resume the study, rerun the same command." in output
    assert "Traceback" not in output
    sweep_dir, study = study_of(tmp_path)
    assert [t.state.name for t in study.trials] == ["COMPLETE", "FAIL"]
    assert read_metrics(sweep_dir / "1")["status"] == "interrupted"
    assert_resumed_exactly(tmp_path)


def test_sigterm_to_the_main_process_stops_its_workers_then_rerun_resumes(tmp_path):
    """`kill PID` (not a terminal's Ctrl-C) reaches only the main process; it stops its two workers."""
    marker = f"hydra.sweep.dir={tmp_path / 'outputs' / 'sweeps' / 'resume'}"
    code, output = start_then_signal(tmp_path, signal.SIGTERM, "hydra.sweeper.n_workers=2", marker)
    assert code != 0 and "interrupted. Finished trials are kept" in output
    assert processes_left(marker) == []  # no worker left behind
    sweep_dir, study = study_of(tmp_path)
    stopped = [t for t in study.trials if t.state.name == "FAIL"]
    assert stopped and all("fail_reason" not in t.user_attrs for t in stopped)
    assert read_metrics(sweep_dir / "1")["status"] == "interrupted"  # the trial held mid-run
    # the other worker's trial was stopped mid-run too, or (asked just before the signal) before its job
    # made its dir: then there is nothing of it to keep
    begun = [t for t in stopped if (sweep_dir / str(t.number) / METRICS).is_file()]
    assert all(read_metrics(sweep_dir / str(t.number))["status"] == "interrupted" for t in begun)

    result = run_train(*COMMAND, "hydra.sweeper.n_workers=2", marker, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    _, study = study_of(tmp_path)
    assert sum(t.state.name == "COMPLETE" for t in study.trials) == N_TRIALS
    assert all(t.state.name in ("COMPLETE", "FAIL") for t in study.trials)
