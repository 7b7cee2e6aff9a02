"""Interrupt a study (kill -9, Ctrl-C) mid-trial, rerun the same command, and it finishes exactly.

The interrupted study runs in a process of its own (the signal is the point); the rerun in-process
(conftest's ``train_cli``)."""
import signal

import optuna
import pytest
import yaml

from conftest import RESUME_COMMAND, RESUME_TRIALS, processes_left, start_then_signal
from sweeplab.jobfiles import METRICS, read_metrics

pytestmark = pytest.mark.slow

def study_of(tmp_path):
    sweep_dir = tmp_path / "outputs" / "sweeps" / "resume"
    return sweep_dir, optuna.load_study(study_name="resume", storage=f"sqlite:///{sweep_dir / 'optuna.db'}")


def assert_resumed_exactly(tmp_path, train_cli):
    result = train_cli(*RESUME_COMMAND, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "resuming: 1 finished" in result.stdout + result.stderr
    sweep_dir, study = study_of(tmp_path)
    states = [t.state.name for t in study.trials]
    assert states == ["COMPLETE", "FAIL", "COMPLETE", "COMPLETE", "COMPLETE"]
    assert "fail_reason" not in study.trials[1].user_attrs  # interrupted, so it does not count
    assert read_metrics(sweep_dir / "1")["status"] == "interrupted"
    assert [read_metrics(sweep_dir / str(n))["status"] for n in (0, 2, 3, 4)] == ["ok"] * 4
    results = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
    assert results["finished"] == RESUME_TRIALS and results["states"]["interrupted"] == 1


def test_kill_9_mid_trial_then_rerun_resumes(tmp_path, train_cli):
    code, _ = start_then_signal(tmp_path, signal.SIGKILL)
    assert code == -signal.SIGKILL
    sweep_dir, study = study_of(tmp_path)
    assert [t.state.name for t in study.trials] == ["COMPLETE", "RUNNING"]
    # results are written after every trial, not only at the end
    assert yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())["finished"] == 1
    assert read_metrics(sweep_dir / "1")["status"] == "running"
    assert_resumed_exactly(tmp_path, train_cli)


def test_ctrl_c_mid_trial_stops_cleanly_then_rerun_resumes(tmp_path, train_cli):
    code, output = start_then_signal(tmp_path, signal.SIGINT)
    assert code != 0
    assert "interrupted. Finished trials are kept in sqlite:///" in output
    assert "to resume the study, rerun the same command." in output
    assert "Traceback" not in output
    sweep_dir, study = study_of(tmp_path)
    assert [t.state.name for t in study.trials] == ["COMPLETE", "FAIL"]
    assert read_metrics(sweep_dir / "1")["status"] == "interrupted"
    assert_resumed_exactly(tmp_path, train_cli)


def test_sigterm_to_the_main_process_stops_its_workers_then_rerun_resumes(tmp_path, train_cli):
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

    # the workers were the point of the interrupted run; the rerun resumes as well with one, in-process
    result = train_cli(*RESUME_COMMAND, marker, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    _, study = study_of(tmp_path)
    assert sum(t.state.name == "COMPLETE" for t in study.trials) == RESUME_TRIALS
    assert all(t.state.name in ("COMPLETE", "FAIL") for t in study.trials)
