"""A study on the pool launcher whose pool worker is killed (-9) while it runs a trial's job: the trial is
told FAIL with the cause, and the job's metrics.json says so too (not ``running`` for ever, which the
report would count as interrupted while the study counts a failure)."""
import os
import signal
import subprocess
import time
from pathlib import Path

import optuna
import pytest
from hold import held_at

from conftest import TINY, processes_left, start_held_train
from sweeplab.jobfiles import read_metrics

pytestmark = pytest.mark.slow


def test_a_pool_job_whose_process_is_killed_ends_failed_in_its_files_as_in_the_study(tmp_path):
    sweep = tmp_path / "sweep"
    command = ["-m", "hydra/sweeper=optuna", "hydra/launcher=pool", "hydra.sweeper.n_trials=2",
               "hydra.sweeper.max_failure_rate=0.5",
               "hydra/sweeper/sampler=random", "lr=interval(0.05, 0.1)", *TINY, *held_at(0, 1),
               f"hydra.sweep.dir={sweep}"]
    with open(tmp_path / "run.log", "w") as log:
        proc = start_held_train(*command, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 300  # a safety net against a run that never gets there
            while not (tmp_path / "held").exists() and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.02)
            # the process holding trial 0's job: the pool worker, a child of the main process
            (pool_worker,) = [pid for pid in processes_left(f"hydra.sweep.dir={sweep}", timeout=0)
                              if Path(f"/proc/{pid}/stat").read_text().split()[3] == str(proc.pid)]
            os.kill(pool_worker, signal.SIGKILL)
            assert proc.wait(timeout=120) == 0, (tmp_path / "run.log").read_text()[-3000:]
        finally:
            proc.kill()
    trials = optuna.load_study(study_name=None, storage=f"sqlite:///{sweep / 'optuna.db'}").trials
    assert [t.state.name for t in trials] == ["FAIL", "COMPLETE"]
    assert "ended with exit code -9" in trials[0].user_attrs["fail_reason"]
    metrics = read_metrics(sweep / "0")
    assert metrics["status"] == "failed" and "ended with exit code -9" in metrics["reason"], metrics
