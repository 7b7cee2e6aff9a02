"""The files a job writes into its dir: the interface between runs, sweepers and reports.

Every write goes to a temporary file in the same dir and is renamed over the target, so a killed
job leaves the previous complete version or nothing, never half a file.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Iterable

import pandas as pd

HISTORY = "history.csv"
METRICS = "metrics.json"
CHECKPOINT = "checkpoint.pt"
# what the Optuna sweeper writes into an Optuna sweep dir, beside the job dirs
OPTUNA_RESULTS = "optimization_results.yaml"
OPTUNA_TRIALS = "trials.csv"
# Values of metrics.json's "status": finished ok first, then each way of not finishing.
STATUSES = ("ok", "diverged", "pruned", "failed", "interrupted", "running")


def write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` on a temporary sibling of ``path``, then rename it to ``path``."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o644)  # mkstemp makes files private; job files are meant to be read
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_metrics(job_dir: Path, metrics: dict[str, Any]) -> None:
    """metrics.json, strict JSON: a nan or inf (a diverged loss) is written as null."""
    strict = {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in metrics.items()}
    write_atomic(job_dir / METRICS, lambda tmp: tmp.write_text(json.dumps(strict, indent=2, allow_nan=False) + "\n"))


def read_metrics(job_dir: Path) -> dict[str, Any]:
    return json.loads((job_dir / METRICS).read_text())


def write_history(job_dir: Path, records: Iterable[Any]) -> None:
    frame = pd.DataFrame([asdict(record) for record in records])
    write_atomic(job_dir / HISTORY, lambda tmp: frame.to_csv(tmp, index=False))


def save_checkpoint(job_dir: Path, state: dict[str, Any]) -> None:
    import torch  # here, so the report and the sweeper read job files without loading torch

    write_atomic(job_dir / CHECKPOINT, lambda tmp: torch.save(state, tmp))
