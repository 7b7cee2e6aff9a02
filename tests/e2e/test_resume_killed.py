"""A real grid process killed mid-job (kill -9, or kill PID = SIGTERM), then the same command again (in-process):
the killed job resumes from its checkpoint and ends as a run never stopped; finished jobs are untouched."""
import signal
import subprocess

import pytest
from hold import held_at

from conftest import assert_same_run, file_states, signal_when_held, start_held_train
from sweeplab.job.task import run
from sweeplab.jobfiles import read_metrics
from sweeplab.report.collect import collect

pytestmark = pytest.mark.slow

# job 1 stands still at the end of its epoch 3 (hold.py), after its checkpoint of epoch 2, until the signal
GRID = ["data=synthetic", "data.n_train=600", "data.n_test=200", "batch_size=64", "epochs=4", "model.width=64",
        "checkpoint=true", "optimizer=adam", "lr=0.003", "model.dropout=0.2", *held_at(1, 3)]


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM], ids=["kill -9", "kill PID"])
def test_a_killed_grid_resumes_its_killed_job_from_the_checkpoint(tmp_path, make_cfg, signum, train_cli):
    sweep = tmp_path / "sweep"
    with open(tmp_path / "first.err", "w") as errors:
        proc = start_held_train("-m", "seed=0,1", *GRID, f"hydra.sweep.dir={sweep}", cwd=tmp_path,
                                stdout=subprocess.DEVNULL, stderr=errors)
        signal_when_held(proc, tmp_path, signum, log=tmp_path / "first.err")
    stderr = (tmp_path / "first.err").read_text()
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

    again = train_cli("-m", "seed=0,1", *GRID, f"hydra.sweep.dir={sweep}", cwd=tmp_path)  # the kill needed a process
    assert again.returncode == 0, again.stderr[-2000:]
    assert "1 finished jobs skipped, 1 to run (0 failed, 1 interrupted, 0 new)" in again.stdout
    assert "resumed from checkpoint.pt after epoch 2" in again.stdout
    assert file_states(sweep / "0") == finished
    run(make_cfg(*GRID, "seed=1"), tmp_path / "never_stopped")
    assert_same_run(tmp_path / "never_stopped", sweep / "1")
