"""The metrics.json schema (jobfiles.Metrics) and what is derived from it."""
import json
from dataclasses import fields

import pytest

from sweeplab.config import OBJECTIVES
from sweeplab.jobfiles import (
    METRIC_KEYS,
    NUMERIC_METRICS,
    PER_EPOCH_METRICS,
    Metrics,
    ended_by,
    read_metrics,
    write_metrics,
)
from sweeplab.report.collect import METRIC_COLUMNS
from sweeplab.training.trainer import EpochRecord


def test_every_metrics_json_has_every_key_and_nan_becomes_null(tmp_path):
    write_metrics(tmp_path, Metrics(status="diverged", train_loss=float("nan"), params=10))
    metrics = read_metrics(tmp_path)
    assert tuple(metrics) == METRIC_KEYS
    assert metrics["train_loss"] is None and metrics["params"] == 10 and metrics["best_val_acc"] is None
    json.loads((tmp_path / "metrics.json").read_text())  # strict JSON, no NaN literal


def test_an_unknown_status_is_refused(tmp_path):
    with pytest.raises(ValueError, match="status='done': must be one of ok, diverged"):
        write_metrics(tmp_path, Metrics(status="done"))
    assert not (tmp_path / "metrics.json").exists()


def test_objectives_are_the_numeric_keys():
    assert OBJECTIVES == NUMERIC_METRICS
    assert {"best_val_acc", "test_acc_at_best_val", "params", "wall_seconds"} <= set(OBJECTIVES)
    assert not {"status", "reason", "device"} & set(OBJECTIVES)


def test_report_columns_are_the_schema_without_status_and_reason():
    assert ["status", "reason", *METRIC_COLUMNS] == list(METRIC_KEYS)


def test_per_epoch_metrics_name_real_history_columns():
    history_columns = {f.name for f in fields(EpochRecord)}
    assert set(PER_EPOCH_METRICS.values()) <= history_columns
    assert PER_EPOCH_METRICS["best_val_acc"] == "val_acc"
    assert set(PER_EPOCH_METRICS) <= set(OBJECTIVES)


@pytest.mark.parametrize("exc, status", [
    (KeyboardInterrupt(), "interrupted"),  # Ctrl-C, or SIGTERM raised as Ctrl-C
    (SystemExit(-1), "interrupted"),  # submitit's exit of a job it requeues (preemption, time-out)
    (RuntimeError("out of memory"), "failed"),
])
def test_a_job_stopped_from_outside_is_interrupted_and_one_that_raised_failed(exc, status):
    metrics = ended_by(exc)
    assert (metrics.status, metrics.reason) == (status, f"{type(exc).__name__}: {exc}")
