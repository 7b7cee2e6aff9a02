"""The task function in-process: config from compose, a temporary job dir, the files it writes."""
import json
import math

import pandas as pd
import pytest
import torch

from conftest import TINY
from sweeplab.errors import ConfigError, DataError
from sweeplab.job.task import run
from sweeplab.jobfiles import read_metrics
from sweeplab.training.data import load_splits

HISTORY_COLUMNS = ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds"]


def test_a_run_writes_history_and_metrics_and_returns_best_val_acc(make_cfg, tmp_path):
    value = run(make_cfg(*TINY, "epochs=3"), tmp_path)
    history = pd.read_csv(tmp_path / "history.csv")
    assert list(history.columns) == HISTORY_COLUMNS
    assert history["epoch"].tolist() == [1, 2, 3]
    assert (history["lr"] == 0.1).all() and (history["seconds"] > 0).all()
    metrics = read_metrics(tmp_path)
    assert metrics["status"] == "ok" and metrics["reason"] is None
    assert metrics["best_val_acc"] == history["val_acc"].max() == value
    assert metrics["best_epoch"] == int(history["val_acc"].idxmax()) + 1
    assert metrics["val_acc"] == history["val_acc"].iloc[-1]
    assert metrics["epochs_completed"] == 3
    assert metrics["params"] == 784 * 256 + 256 + 256 * 10 + 10
    assert 0 <= metrics["test_acc"] <= 1 and 0 <= metrics["test_acc_at_best_val"] <= 1
    assert metrics["wall_seconds"] > 0 and metrics["device"] == "cpu"
    assert not list(tmp_path.glob(".*.tmp")), "a temporary file was left behind"


def test_the_objective_is_named_in_config(make_cfg, tmp_path):
    assert run(make_cfg(*TINY, "objective=params"), tmp_path / "a") == read_metrics(tmp_path / "a")["params"]
    both = run(make_cfg(*TINY, "objective=[best_val_acc,params]"), tmp_path / "b")
    metrics = read_metrics(tmp_path / "b")
    assert both == (metrics["best_val_acc"], metrics["params"])


def test_same_config_same_history(make_cfg, tmp_path):
    cfg = make_cfg(*TINY, "seed=5", "model.dropout=0.2")
    run(cfg, tmp_path / "a")
    run(cfg, tmp_path / "b")
    a, b = (pd.read_csv(tmp_path / d / "history.csv").drop(columns="seconds") for d in "ab")
    pd.testing.assert_frame_equal(a, b)


def test_a_bad_value_fails_before_training_and_says_so_in_metrics(make_cfg, tmp_path):
    with pytest.raises(ConfigError, match="batch_size=0: must be >= 1"):
        run(make_cfg(*TINY, "batch_size=0"), tmp_path)
    metrics = read_metrics(tmp_path)
    assert metrics["status"] == "failed"
    assert metrics["reason"] == "ConfigError: invalid config: batch_size=0: must be >= 1"
    assert not (tmp_path / "history.csv").exists()


def test_missing_data_fails_with_status_failed(make_cfg, tmp_path):
    cfg = make_cfg(f"data.root={tmp_path / 'none'}", "data.system_root=null", "data.download=false")
    with pytest.raises(DataError, match="dataset not found"):
        run(cfg, tmp_path / "job")
    assert read_metrics(tmp_path / "job")["status"] == "failed"


def test_divergence_is_recorded_and_returns_nan(make_cfg, tmp_path):
    value = run(make_cfg(*TINY, "lr=1e12", "epochs=5"), tmp_path)
    metrics = read_metrics(tmp_path)
    assert metrics["status"] == "diverged" and "train loss became nan" in metrics["reason"]
    assert metrics["train_loss"] is None  # strict JSON: no NaN literal
    assert math.isnan(value)
    assert len(pd.read_csv(tmp_path / "history.csv")) == metrics["epochs_completed"]


def test_checkpoint_holds_the_best_weights(make_cfg, tmp_path):
    run(make_cfg(*TINY, "checkpoint=true", "model.width=32"), tmp_path)
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert state["best_state"]["0.weight"].shape == (32, 784)
    assert state["finished"] and state["best_epoch"] == read_metrics(tmp_path)["best_epoch"]


def test_early_stopping_ends_with_status_ok(make_cfg, tmp_path):
    run(make_cfg(*TINY, "epochs=30", "patience=1", "lr=0.5"), tmp_path)
    metrics = read_metrics(tmp_path)
    assert metrics["status"] == "ok" and metrics["reason"].startswith("early stop")
    assert metrics["epochs_completed"] < 30


def test_metrics_json_is_plain_json(make_cfg, tmp_path):
    run(make_cfg(*TINY), tmp_path)
    assert json.loads((tmp_path / "metrics.json").read_text())["status"] == "ok"


def test_jobs_share_the_loaded_data_and_leave_it_unchanged(make_cfg, tmp_path):
    """The process keeps one copy of the data for all its jobs, so no job may modify it in place."""
    cfg = make_cfg(*TINY, "data.n_train=640", "optimizer=adam", "model.dropout=0.1")
    splits = load_splits(cfg.data, torch.device("cpu"))
    tensors = [value for value in vars(splits).values() if torch.is_tensor(value)]
    before = [tensor.clone() for tensor in tensors]
    run(cfg, tmp_path / "a")
    run(cfg, tmp_path / "b")
    assert load_splits(cfg.data, torch.device("cpu")) is splits
    assert len(tensors) == 6 and all(torch.equal(now, then) for now, then in zip(tensors, before, strict=True))
