"""A real grid process killed mid-job (kill -9, or kill PID = SIGTERM), then the same command again:
the killed job resumes from its checkpoint and ends as a run never stopped; finished jobs are untouched."""
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
from test_checkpoint import assert_same_run

from conftest import REPO, file_states, run_train
from sweeplab.jobfiles import read_metrics
from sweeplab.report.collect import collect
from sweeplab.task import run

pytestmark = pytest.mark.slow

# ~0.1-0.5 s per epoch here: time to kill the second job between its epochs 2 and 8
GRID = ["data=synthetic", "data.n_train=3000", "data.n_test=200", "batch_size=32", "epochs=8", "model.width=64",
        "checkpoint=true", "optimizer=adam", "lr=0.003", "model.dropout=0.2"]


def rows(path):
    try:
        return len(pd.read_csv(path))
    except (OSError, ValueError):
        return 0


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM], ids=["kill -9", "kill PID"])
def test_a_killed_grid_resumes_its_killed_job_from_the_checkpoint(tmp_path, make_cfg, signum):
    sweep = tmp_path / "sweep"
    command = [sys.executable, str(REPO / "train.py"), "-m", "seed=0,1", *GRID, f"hydra.sweep.dir={sweep}"]
    proc = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while rows(sweep / "1" / "history.csv") < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=120)
    killed = read_metrics(sweep / "1")
    assert read_metrics(sweep / "0")["status"] == "ok"
    if signum == signal.SIGKILL:
        assert killed["status"] == "running"  # nobody could say otherwise
        job = collect([sweep]).jobs.set_index("job").loc["1"]
        assert job["status"] == "interrupted" and "files last written" in job["reason"]
    else:
        assert proc.returncode == 1
        assert killed["status"] == "interrupted"
        assert f"1 of 2 jobs finished, 1 left. Rerun the same command with hydra.sweep.dir={sweep}" in stderr
        assert "Traceback" not in stderr
    finished = file_states(sweep / "0")

    again = run_train("-m", "seed=0,1", *GRID, f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "1 finished jobs skipped, 1 to run (0 failed, 1 interrupted, 0 new)" in again.stdout
    assert "resumed from checkpoint.pt after epoch" in again.stdout
    assert file_states(sweep / "0") == finished
    run(make_cfg(*GRID, "seed=1"), tmp_path / "never_stopped")
    assert_same_run(tmp_path / "never_stopped", sweep / "1")
