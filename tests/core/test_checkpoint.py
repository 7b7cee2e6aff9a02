"""Job resume (checkpoint=true) in-process: a run stopped after an epoch and rerun into its dir ends
with the same history and metrics as a run never stopped; a checkpoint that cannot be resumed is
said in one line and the run starts from scratch."""
from __future__ import annotations

import logging

import pandas as pd
import pytest
import torch

from conftest import TINY, assert_same_run, compose_train, outcome
from sweeplab.job.task import run
from sweeplab.jobfiles import read_metrics
from sweeplab.training.checkpoint import Checkpoint

# Adam's moments, a cosine schedule, dropout's RNG and early stopping all carry state across epochs.
STATEFUL = [*TINY, "epochs=4", "model.width=32", "checkpoint=true", "optimizer=adam", "lr=0.003",
            "scheduler=cosine", "model.dropout=0.3", "patience=10"]


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    """The reference: STATEFUL run from start to end without a stop."""
    cfg = compose_train(*STATEFUL)
    job_dir = tmp_path_factory.mktemp("whole")
    run(cfg, job_dir)
    return job_dir


@pytest.fixture
def stop_after_epoch(monkeypatch):
    """Make the next run stop (as Ctrl-C would) right after epoch ``n`` was checkpointed."""

    def arm(n: int) -> None:
        save = Checkpoint.on_epoch_end

        def save_then_stop(self, record):
            save(self, record)
            if record.epoch == n:
                monkeypatch.setattr(Checkpoint, "on_epoch_end", save)
                raise KeyboardInterrupt

        monkeypatch.setattr(Checkpoint, "on_epoch_end", save_then_stop)

    return arm


def test_a_resumed_run_ends_as_a_run_never_stopped(make_cfg, tmp_path, whole, stop_after_epoch, caplog):
    cfg = make_cfg(*STATEFUL)
    stop_after_epoch(2)
    with pytest.raises(KeyboardInterrupt):
        run(cfg, tmp_path / "stopped")
    assert read_metrics(tmp_path / "stopped")["status"] == "interrupted"
    assert len(pd.read_csv(tmp_path / "stopped" / "history.csv")) == 2

    caplog.set_level(logging.INFO)
    run(cfg, tmp_path / "stopped")
    assert "resumed from checkpoint.pt after epoch 2" in caplog.text
    assert_same_run(whole, tmp_path / "stopped")
    state = torch.load(tmp_path / "stopped" / "checkpoint.pt", weights_only=True)
    assert state["finished"] and len(state["history"]) == 4
    assert state["best_state"]["0.weight"].shape == (32, 784)


@pytest.mark.parametrize("damage, said", [
    (lambda path: path.write_bytes(path.read_bytes()[:1000]), "cannot read it"),
    (lambda path: path.write_text("not a checkpoint"), "cannot read it"),
    (lambda path: torch.save({"format": 1, "config": "another", "finished": False}, path),
     "written by a run of another config"),
    (lambda path: torch.save({"model": {}}, path), "not a checkpoint of this version"),
], ids=["truncated", "not a torch file", "another config", "another format"])
def test_a_checkpoint_that_cannot_resume_is_said_in_one_line_and_the_run_starts_over(
        make_cfg, tmp_path, whole, stop_after_epoch, caplog, damage, said):
    cfg = make_cfg(*STATEFUL)
    stop_after_epoch(2)
    with pytest.raises(KeyboardInterrupt):
        run(cfg, tmp_path / "damaged")
    damage(tmp_path / "damaged" / "checkpoint.pt")

    caplog.set_level(logging.INFO)
    run(cfg, tmp_path / "damaged")
    (line,) = [r.getMessage() for r in caplog.records if "checkpoint.pt" in r.getMessage()]
    assert said in line and line.endswith("training from scratch")
    assert_same_run(whole, tmp_path / "damaged")


def test_a_finished_run_is_trained_again_not_resumed(make_cfg, tmp_path, caplog):
    cfg = make_cfg(*STATEFUL, "epochs=2")
    run(cfg, tmp_path)
    first = outcome(tmp_path)
    caplog.set_level(logging.INFO)
    run(cfg, tmp_path)
    assert "its run had finished; training from scratch" in caplog.text
    pd.testing.assert_frame_equal(outcome(tmp_path)[0], first[0])


def test_without_checkpoint_true_no_checkpoint_is_written(make_cfg, tmp_path):
    run(make_cfg(*TINY), tmp_path)
    assert not (tmp_path / "checkpoint.pt").exists()
