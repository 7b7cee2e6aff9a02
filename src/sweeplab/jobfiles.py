"""The files a job writes into its dir: the interface between runs, sweepers and reports.

Every write goes to a temporary file in the same dir and is renamed over the target, so a killed
job leaves the previous complete version or nothing, never half a file.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, get_type_hints

HISTORY = "history.csv"
METRICS = "metrics.json"
CHECKPOINT = "checkpoint.pt"
# what the Optuna sweeper writes into an Optuna sweep dir, beside the job dirs
OPTUNA_RESULTS = "optimization_results.yaml"
OPTUNA_TRIALS = "trials.csv"
# Values of metrics.json's "status": finished ok first, then each way of not finishing.
STATUSES = ("ok", "diverged", "pruned", "failed", "interrupted", "running")
FINISHED = STATUSES[:3]  # a rerun of the sweep skips these jobs


def _tracked_by(column: str) -> Any:
    """A metric a pruner can follow epoch by epoch: ``column`` is history.csv's column for it."""
    return field(default=None, metadata={"history": column})


@dataclass
class Metrics:
    """The keys of metrics.json, defined here once: the objectives a job can return, the report's
    columns and the metrics a pruner can follow are derived from these fields. A field left None
    (a failed job's accuracies) is written as null, so every metrics.json has every key."""

    status: str  # one of STATUSES
    reason: Optional[str] = None  # why the job ended as it did (failure, pruning, early stop)
    best_val_acc: Optional[float] = _tracked_by("val_acc")  # what model selection and sweeps use
    test_acc_at_best_val: Optional[float] = None  # test accuracy of the best epoch's weights
    best_epoch: Optional[int] = None
    epochs_completed: Optional[int] = None
    val_acc: Optional[float] = _tracked_by("val_acc")  # val_* to train_*: after the last epoch
    val_loss: Optional[float] = _tracked_by("val_loss")
    test_acc: Optional[float] = None
    test_loss: Optional[float] = None
    train_acc: Optional[float] = _tracked_by("train_acc")
    train_loss: Optional[float] = _tracked_by("train_loss")
    params: Optional[int] = None  # the model's parameter count
    device: Optional[str] = None
    wall_seconds: Optional[float] = None
    # "host:pid" of the process running the job, written with status running: the report tells a job
    # whose process is gone (kill -9) from one still running
    process: Optional[str] = None


def ended_by(exc: BaseException, wall_seconds: float | None = None) -> Metrics:
    """The metrics of a job that ``exc`` ended: ``interrupted`` by Ctrl-C (or SIGTERM, raised as Ctrl-C)
    or by an exit of its process (submitit exits a job it requeues on preemption or time-out), ``failed``
    otherwise."""
    status = "interrupted" if isinstance(exc, (KeyboardInterrupt, SystemExit)) else "failed"
    return Metrics(status=status, reason=f"{type(exc).__name__}: {exc}", wall_seconds=wall_seconds)


METRIC_KEYS = tuple(f.name for f in fields(Metrics))
# The keys that hold numbers: what a job can return to a sweeper (config's `objective`).
NUMERIC_METRICS = tuple(
    name for name, hint in get_type_hints(Metrics).items() if hint in (Optional[int], Optional[float])
)
# metrics.json key -> the history.csv column that tracks it per epoch (for pruning).
PER_EPOCH_METRICS = {f.name: f.metadata["history"] for f in fields(Metrics) if "history" in f.metadata}


def write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` on a temporary sibling of ``path``, then rename it to ``path``."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o644)  # mkstemp makes files private; job files are meant to be read
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.errno is not None:  # name the file meant, not its temporary
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise


def write_metrics(job_dir: Path, metrics: Metrics) -> None:
    """metrics.json, strict JSON: a nan or inf (a diverged loss) is written as null."""
    if metrics.status not in STATUSES:
        raise ValueError(f"metrics status={metrics.status!r}: must be one of {', '.join(STATUSES)}")
    values = asdict(metrics)
    strict = {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in values.items()}
    write_atomic(job_dir / METRICS, lambda tmp: tmp.write_text(json.dumps(strict, indent=2, allow_nan=False) + "\n"))


def read_metrics(job_dir: Path) -> dict[str, Any]:
    """metrics.json as written, as a dict: files from older versions may lack keys of :class:`Metrics`."""
    return json.loads((job_dir / METRICS).read_text())


def write_history(job_dir: Path, records: Iterable[Any]) -> None:
    """history.csv: one row per epoch record (a dataclass), its fields as columns, NaN as an empty cell
    (as pandas writes it). The csv module, not pandas: importing pandas would add a fifth of a second
    to every job process's start."""
    rows = [{k: "" if isinstance(v, float) and math.isnan(v) else v for k, v in asdict(record).items()}
            for record in records]

    def write(tmp: Path) -> None:
        with tmp.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else [], lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)

    write_atomic(job_dir / HISTORY, write)


def save_checkpoint(job_dir: Path, state: dict[str, Any]) -> None:
    import torch  # here, so the report and the sweeper read job files without loading torch

    # serialised in memory first: torch.save into a file on a full disk fails with C++ errors that
    # name no cause and keep the file open; a plain write fails with ENOSPC and closes it
    buffer = io.BytesIO()
    torch.save(state, buffer)
    write_atomic(job_dir / CHECKPOINT, lambda tmp: tmp.write_bytes(buffer.getbuffer()))
