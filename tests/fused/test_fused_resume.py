"""The fused launcher with checkpoint=true: each member writes, every epoch, the checkpoint its own
unfused run writes (model and torch.optim state_dicts, data order, history), so a group stopped
mid-run resumes: each unfinished member alone, through the task, after its last finished epoch,
ending as a run never stopped (within test_fused.py's tolerance); finished jobs are untouched."""
from __future__ import annotations

import signal
import subprocess

import pytest
import torch
from hold import held_at

from conftest import (
    TINY,
    assert_same_run_within_tolerance,
    file_states,
    multirun,
    signal_when_held,
    start_held_train,
)
from sweeplab.errors import SweepInterrupted
from sweeplab.job.task import main, run
from sweeplab.jobfiles import read_metrics
from sweeplab.training.checkpoint import Checkpoint

# two groups of two: 784-16-10 (jobs 0, 1) finishes, then 784-32-10 (jobs 2, 3) is stopped after epoch 1
GRID = [*TINY, "epochs=3", "checkpoint=true"]


@pytest.fixture
def stop_second_group_after_epoch_1(monkeypatch):
    """Ctrl-C right after job 3 (the second group's last member) saved its epoch-1 checkpoint."""
    save = Checkpoint.on_epoch_end

    def save_then_stop(self, record):
        save(self, record)
        if (self.job_dir.name, record.epoch) == ("3", 1):
            monkeypatch.setattr(Checkpoint, "on_epoch_end", save)
            raise KeyboardInterrupt

    monkeypatch.setattr(Checkpoint, "on_epoch_end", save_then_stop)


@pytest.mark.parametrize("optimizer, state_keys", [
    ("optimizer=sgd_momentum", {"momentum_buffer"}), ("optimizer=adam lr=0.003", {"exp_avg", "exp_avg_sq", "step"}),
    ("optimizer=sgd_momentum scheduler=cosine", {"momentum_buffer"}),
    ("optimizer=rmsprop lr=0.001 optimizer.momentum=0.5", {"square_avg", "momentum_buffer", "step"}),
    # each member's checkpoint holds its own dropout stream: resumed alone, its run draws on from it
    ("optimizer=sgd_momentum model.dropout=0.3", {"momentum_buffer"}),
])
def test_a_stopped_fused_group_resumes_each_member_alone_as_if_never_stopped(
    tmp_path, capfd, stop_second_group_after_epoch_1, optimizer, state_keys,
):
    sweep = tmp_path / "fused"
    overrides = [*GRID, "model.width=16,32", "seed=0,1", *optimizer.split(), "hydra/launcher=fused"]
    with pytest.raises(SweepInterrupted):
        multirun(main, sweep, *overrides)
    assert [read_metrics(sweep / str(num))["status"] for num in range(4)] == ["ok", "ok", "interrupted", "interrupted"]
    for num in (2, 3):
        state = torch.load(sweep / str(num) / "checkpoint.pt", weights_only=True)
        assert not state["finished"] and len(state["history"]) == 1
        assert state["model"]["0.weight"].shape == (32, 784)
        assert [set(param) for param in state["optimizer"]["state"].values()] == [state_keys] * 4
        assert state["optimizer"]["param_groups"][0]["params"] == [0, 1, 2, 3]
        if "scheduler" in optimizer:  # stepped once: the lr of epoch 2 in the param group and the schedule
            assert state["scheduler"]["last_epoch"] == 1
            assert state["optimizer"]["param_groups"][0]["lr"] == state["scheduler"]["_last_lr"][0] < 0.1
        else:
            assert state["scheduler"] is None
    finished = file_states(sweep / "0", sweep / "1")
    capfd.readouterr()

    multirun(main, sweep, *overrides)
    out = capfd.readouterr().out
    assert "2 finished jobs skipped, 2 to run (0 failed, 2 interrupted, 0 new)" in out
    for num in (2, 3):
        assert f"alone #{num}: resumes from its checkpoint after epoch 1" in out
        assert "resumed from checkpoint.pt after epoch 1" in (sweep / str(num) / "train.log").read_text()
    assert file_states(sweep / "0", sweep / "1") == finished

    multirun(main, tmp_path / "never_stopped", *GRID, "model.width=32", "seed=0,1", *optimizer.split())
    for num in (2, 3):
        assert_same_run_within_tolerance(tmp_path / "never_stopped" / str(num - 2), sweep / str(num), epochs=3)


@pytest.mark.slow
def test_a_fused_grid_killed_mid_group_resumes_its_members_from_their_checkpoints(tmp_path, make_cfg, train_cli):
    shared = [*TINY, "epochs=4", "model.width=64", "checkpoint=true", "optimizer=adam", "lr=0.003"]
    sweep = tmp_path / "sweep"
    grid = ["-m", "hydra/launcher=fused", "seed=0,1", *shared, f"hydra.sweep.dir={sweep}"]
    # job 1, the group's last member, stands still in its epoch 2 (hold.py), after job 0 saved its
    # epoch-2 checkpoint and before job 1 saved its own
    proc = start_held_train(*grid, *held_at(1, 2), cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    signal_when_held(proc, tmp_path, signal.SIGKILL)
    assert [read_metrics(sweep / num)["status"] for num in "01"] == ["running", "running"]

    again = train_cli(*grid, *held_at(1, 2), cwd=tmp_path)  # in-process: the kill needed a process, the rerun not
    assert again.returncode == 0, again.stderr[-2000:]
    assert "0 finished jobs skipped, 2 to run (0 failed, 2 interrupted, 0 new)" in again.stdout
    for num, epoch in (("0", 2), ("1", 1)):
        assert f"alone #{num}: resumes from its checkpoint after epoch {epoch}\n" in again.stdout
        assert f"resumed from checkpoint.pt after epoch {epoch}" in (sweep / num / "train.log").read_text()
        never_stopped = tmp_path / f"never_stopped_{num}"
        run(make_cfg(*shared, f"seed={num}"), never_stopped)
        assert_same_run_within_tolerance(never_stopped, sweep / num, epochs=4)
