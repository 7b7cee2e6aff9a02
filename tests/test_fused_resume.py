"""The fused launcher with checkpoint=true: each member writes, every epoch, the checkpoint its own
unfused run writes (model and torch.optim state_dicts, data order, history), so a group stopped
mid-run resumes: each unfinished member alone, through the task, after its last finished epoch,
ending as a run never stopped (within test_fused.py's tolerance); finished jobs are untouched."""
from __future__ import annotations

import re
import subprocess
import sys
import time

import pytest
import torch
from test_fused import assert_same_run_within_tolerance, multirun

import sweeplab.fused
from conftest import REPO, TINY, file_states, run_train
from hydra_plugins.sweeplab_grid_sweeper.grid_sweeper import SweepInterrupted
from sweeplab.jobfiles import read_metrics
from sweeplab.task import run

# two groups of two: 784-16-10 (jobs 0, 1) finishes, then 784-32-10 (jobs 2, 3) is stopped after epoch 1
GRID = [*TINY, "epochs=3", "checkpoint=true"]


@pytest.fixture
def stop_second_group_after_epoch_1(monkeypatch):
    """Ctrl-C right after job 3 (the second group's last member) saved its epoch-1 checkpoint."""
    save = sweeplab.fused.save_member_checkpoint

    def save_then_stop(member, *args):
        save(member, *args)
        if (member.cfg.model.width, member.cfg.seed, len(member.result.history)) == (32, 1, 1):
            monkeypatch.setattr(sweeplab.fused, "save_member_checkpoint", save)
            raise KeyboardInterrupt

    monkeypatch.setattr(sweeplab.fused, "save_member_checkpoint", save_then_stop)


@pytest.mark.parametrize("optimizer, state_keys", [
    ("optimizer=sgd_momentum", {"momentum_buffer"}), ("optimizer=adam lr=0.003", {"exp_avg", "exp_avg_sq", "step"}),
])
def test_a_stopped_fused_group_resumes_each_member_alone_as_if_never_stopped(
    tmp_path, capfd, stop_second_group_after_epoch_1, optimizer, state_keys,
):
    sweep = tmp_path / "fused"
    overrides = [*GRID, "model.width=16,32", "seed=0,1", *optimizer.split(), "hydra/launcher=fused"]
    with pytest.raises(SweepInterrupted):
        multirun(sweep, *overrides)
    assert [read_metrics(sweep / str(num))["status"] for num in range(4)] == ["ok", "ok", "interrupted", "interrupted"]
    for num in (2, 3):
        state = torch.load(sweep / str(num) / "checkpoint.pt", weights_only=True)
        assert not state["finished"] and len(state["history"]) == 1
        assert state["model"]["0.weight"].shape == (32, 784)
        assert [set(param) for param in state["optimizer"]["state"].values()] == [state_keys] * 4
        assert state["optimizer"]["param_groups"][0]["params"] == [0, 1, 2, 3]
    finished = file_states(sweep / "0", sweep / "1")
    capfd.readouterr()

    multirun(sweep, *overrides)
    out = capfd.readouterr().out
    assert "2 finished jobs skipped, 2 to run (0 failed, 2 interrupted, 0 new)" in out
    for num in (2, 3):
        assert f"alone #{num}: resumes from its checkpoint after epoch 1" in out
        assert "resumed from checkpoint.pt after epoch 1" in (sweep / str(num) / "train.log").read_text()
    assert file_states(sweep / "0", sweep / "1") == finished

    multirun(tmp_path / "never_stopped", *GRID, "model.width=32", "seed=0,1", *optimizer.split())
    for num in (2, 3):
        assert_same_run_within_tolerance(tmp_path / "never_stopped" / str(num - 2), sweep / str(num), epochs=3)


@pytest.mark.slow
def test_a_fused_grid_killed_mid_group_resumes_its_members_from_their_checkpoints(tmp_path, make_cfg):
    # ~0.1-0.3 s per fused epoch here: time to kill the group between its epochs 1 and 4
    shared = ["data=synthetic", "data.n_train=2000", "data.n_test=200", "batch_size=32", "epochs=4", "model.width=64",
              "checkpoint=true", "optimizer=adam", "lr=0.003"]
    sweep = tmp_path / "sweep"
    grid = ["-m", "hydra/launcher=fused", "seed=0,1", *shared, f"hydra.sweep.dir={sweep}"]
    proc = subprocess.Popen([sys.executable, str(REPO / "train.py"), *grid], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoints = [sweep / num / "checkpoint.pt" for num in "01"]
    deadline = time.monotonic() + 240
    while not all(path.is_file() for path in checkpoints) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.kill()
    proc.wait(timeout=60)
    assert [read_metrics(sweep / num)["status"] for num in "01"] == ["running", "running"]

    again = run_train(*grid, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "0 finished jobs skipped, 2 to run (0 failed, 2 interrupted, 0 new)" in again.stdout
    for num in "01":
        assert re.search(rf"alone #{num}: resumes from its checkpoint after epoch [1-3]\n", again.stdout), again.stdout
        assert "resumed from checkpoint.pt after epoch" in (sweep / num / "train.log").read_text()
        never_stopped = tmp_path / f"never_stopped_{num}"
        run(make_cfg(*shared, f"seed={num}"), never_stopped)
        assert_same_run_within_tolerance(never_stopped, sweep / num, epochs=4)
