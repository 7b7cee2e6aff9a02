"""Read sweep dirs into DataFrames. The report's only input is the files each job writes:
``.hydra/overrides.yaml``, ``.hydra/config.yaml``, ``history.csv`` and ``metrics.json``.
"""
from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Sequence

import pandas as pd
import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from sweeplab.jobfiles import FINISHED, HISTORY, METRIC_KEYS, METRICS, read_metrics
from sweeplab.report.optuna_files import OptunaFiles, read_optuna_files
from sweeplab.report.values import config_label

OVERRIDES = Path(".hydra") / "overrides.yaml"
CONFIG = Path(".hydra") / "config.yaml"

MISSING = "missing"  # the status of a job dir without metrics.json (killed before it wrote one)
UNREADABLE = "unreadable"  # the status of a job dir with a damaged file; its reason names the file
HISTORY_COLUMNS = ["epoch", "val_acc"]  # what the report reads of history.csv
SEED = "seed"
STUDY_SELECTOR = "sweep"  # `+sweep=lr` picks the study; it is the same for every job, never a parameter
# metrics.json's keys besides status and reason: columns even when no job got far enough to write them.
METRIC_COLUMNS = [key for key in METRIC_KEYS if key not in ("status", "reason")]
EXPECTED = "a sweep dir holds one dir per job (0/, 1/, ...), each with .hydra/ or metrics.json"


class NotASweepDir(ValueError):
    """A dir given to the report that is not a sweep dir; the message names it and what was expected."""


@dataclass
class Sweeps:
    """Everything the report reads, for one or several sweep dirs."""

    jobs: pd.DataFrame  # one row per job dir: sweep, job, config, status, reason, overrides, seed, metrics
    histories: pd.DataFrame  # one row per finished epoch of each job: sweep, job, history.csv's columns
    swept: dict[str, list[str]]  # sweep name -> the override keys that vary across its jobs (not seed)
    paths: dict[str, Path]  # sweep name -> its dir
    optuna: dict[str, OptunaFiles]  # sweep name -> its Optuna files, for Optuna sweeps only


def collect(dirs: Sequence[Path]) -> Sweeps:
    """Read every job dir of every sweep dir. Every dir is checked before any is read."""
    paths = dict(zip(sweep_names(dirs), dirs, strict=True))
    job_dirs = {name: find_job_dirs(path) for name, path in paths.items()}
    optuna = {name: files for name, path in paths.items() if (files := read_optuna_files(path)) is not None}

    records: list[dict[str, Any]] = []
    histories: list[pd.DataFrame] = []
    swept: dict[str, list[str]] = {}
    override_keys: dict[str, None] = {}  # every override key, in order of first appearance
    for name, dirs_of_sweep in job_dirs.items():
        jobs = [read_job(job_dir) for job_dir in dirs_of_sweep]
        if name not in optuna:  # a grid rerun may leave two dirs of one job; Optuna trials may repeat params
            jobs = without_superseded(jobs)
        readable = [job for job in jobs if job.overrides is not None]
        swept[name] = swept_params([job.overrides for job in readable])
        override_keys.update(dict.fromkeys(key for job in readable for key in job.overrides))
        trial_states = trial_states_by_job(optuna.get(name))
        for job in jobs:
            record = {"sweep": name, "job": job.dir.name, **job.record}
            if trial_states:
                record["trial_state"] = trial_states.get(job.dir.name, MISSING)
            records.append(record)
            if job.history is not None:
                histories.append(job.history.assign(sweep=name, job=job.dir.name))

    params = [key for key in override_keys if key != SEED]
    columns = ["sweep", "job", "status", "reason", *params, SEED, *METRIC_COLUMNS]
    jobs_frame = pd.DataFrame(records).reindex(columns=columns + (["trial_state"] if optuna else []))
    labels = [config_label(jobs_frame[jobs_frame["sweep"] == name], swept_of_sweep)
              for name, swept_of_sweep in swept.items()]
    jobs_frame.insert(2, "config", pd.concat(labels))
    history = (pd.concat(histories, ignore_index=True) if histories
               else pd.DataFrame(columns=["sweep", "job", "epoch", "val_acc"]))
    return Sweeps(jobs=jobs_frame, histories=history, swept=swept, paths=paths, optuna=optuna)


@dataclass
class Job:
    """One job dir as read: ``overrides`` is None when a file of it could not be read (then
    ``record`` says ``unreadable`` and names the file and the reason)."""

    dir: Path
    overrides: dict[str, Any] | None
    record: dict[str, Any]  # metrics.json's contents (status first), the overrides and the seed
    history: pd.DataFrame | None


class Unreadable(Exception):
    """A job file that exists but cannot be read; the message names it and says why."""


def read_job(job_dir: Path) -> Job:
    """Everything the report needs from one job dir; damage makes it ``unreadable``, never an error."""
    try:
        overrides = read_overrides(job_dir)
        metrics = read_job_metrics(job_dir)
        history = read_history(job_dir)
        seed = overrides[SEED] if SEED in overrides else read_seed(job_dir)
    except Unreadable as exc:
        return Job(job_dir, None, {"status": UNREADABLE, "reason": str(exc)}, None)
    return Job(job_dir, overrides, {**metrics, **overrides, SEED: seed}, history)


def read_job_metrics(job_dir: Path) -> dict[str, Any]:
    """metrics.json (status ``missing`` without one); a ``running`` job whose process is gone is ``interrupted``."""
    path = job_dir / METRICS
    if not path.is_file():
        return {"status": MISSING}
    try:
        metrics = read_metrics(job_dir)
        status = metrics["status"]
    except (ValueError, KeyError, TypeError) as exc:
        raise Unreadable(f"{path}: {describe(exc)}") from exc
    if status == "running":
        metrics["status"], metrics["reason"] = running_state(job_dir, metrics)
    return metrics


def running_state(job_dir: Path, metrics: dict[str, Any]) -> tuple[str, str]:
    """(status, reason) of a job whose metrics.json says ``running``: ``interrupted`` when the process it
    recorded ran on this host and is gone (kill -9), else ``running``; the reason says when its files
    were last written."""
    written = max(path.stat().st_mtime for path in job_dir.iterdir() if path.is_file())
    when = f"files last written {datetime.fromtimestamp(written):%Y-%m-%d %H:%M:%S}"
    host, _, pid = str(metrics.get("process") or "").rpartition(":")
    if not pid.isdigit():
        return "running", when
    if host != socket.gethostname():
        return "running", f"on host {host}; {when}"
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return "interrupted", f"stale: its process {pid} is gone (killed); {when}"
    except PermissionError:
        pass  # alive, another user's
    return "running", f"process {pid}; {when}"


def read_history(job_dir: Path) -> pd.DataFrame | None:
    path = job_dir / HISTORY
    if not path.is_file():
        return None
    try:
        history = pd.read_csv(path)
    except (ValueError, OSError) as exc:  # pandas' EmptyDataError and ParserError are ValueErrors
        raise Unreadable(f"{path}: {describe(exc)}") from exc
    missing = [column for column in HISTORY_COLUMNS if column not in history]
    if missing:
        raise Unreadable(f"{path}: no column {', '.join(missing)}")
    if not pd.api.types.is_numeric_dtype(history["epoch"]) or not pd.api.types.is_numeric_dtype(history["val_acc"]):
        raise Unreadable(f"{path}: epoch and val_acc must be numbers")
    return history


def describe(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}".splitlines()[0]


def without_superseded(jobs: list[Job]) -> list[Job]:
    """One job per set of overrides: the newest finished one, else the newest (by metrics.json's time)."""
    def rank(job: Job) -> tuple[bool, float]:
        metrics = job.dir / METRICS
        return job.record["status"] in FINISHED, metrics.stat().st_mtime if metrics.is_file() else 0.0

    best: dict[tuple, Job] = {}
    for job in jobs:
        if job.overrides is None:
            continue
        key = tuple(sorted((k, repr(v)) for k, v in job.overrides.items()))
        if key not in best or rank(job) > rank(best[key]):
            best[key] = job
    kept = {id(job) for job in best.values()}
    return [job for job in jobs if job.overrides is None or id(job) in kept]


def sweep_names(dirs: Sequence[Path]) -> list[str]:
    """Each dir's own name (``lr_sgd``), or the paths as given when two names coincide."""
    names = [Path(d).resolve().name for d in dirs]
    return names if len(set(names)) == len(names) else [str(d) for d in dirs]


def find_job_dirs(sweep_dir: Path) -> list[Path]:
    """The job dirs of a sweep dir, by job number; raises :class:`NotASweepDir` when it has none."""
    if not sweep_dir.is_dir():
        what = "not a directory" if sweep_dir.exists() else "no such directory"
        raise NotASweepDir(f"{sweep_dir}: {what}; {EXPECTED}")
    if is_job_dir(sweep_dir):
        raise NotASweepDir(f"{sweep_dir}: this is one job's dir, not a sweep dir; {EXPECTED}")
    jobs = [child for child in sweep_dir.iterdir() if child.is_dir() and is_job_dir(child)]
    if not jobs:
        what = "empty directory" if not any(sweep_dir.iterdir()) else "no job dirs in it"
        raise NotASweepDir(f"{sweep_dir}: {what}; {EXPECTED}")
    return sorted(jobs, key=job_order)


def job_order(job_dir: Path) -> tuple[bool, int, str]:
    """Numbered job dirs by number (Hydra's default ``0/``, ``1/``, ... ``10/``), then any others by name."""
    numbered = job_dir.name.isdigit()
    return not numbered, int(job_dir.name) if numbered else 0, job_dir.name


def is_job_dir(path: Path) -> bool:
    return (path / ".hydra").is_dir() or (path / METRICS).is_file()


def read_overrides(job_dir: Path) -> dict[str, Any]:
    """The job's command-line overrides as typed values (``lr=1e-3`` -> 0.001), without ``+sweep``.
    Lists and dicts become their override text, so every value can be grouped on."""
    path = job_dir / OVERRIDES
    if not (job_dir / ".hydra").is_dir():
        raise Unreadable(f"{job_dir / '.hydra'}: missing, so the job's overrides and config are unknown")
    if not path.is_file():
        return {}
    try:
        parsed = OverridesParser.create().parse_overrides(yaml.safe_load(path.read_text()) or [])
    except Exception as exc:  # YAML errors, Hydra's override grammar errors, not a list of strings
        raise Unreadable(f"{path}: {describe(exc)}") from exc
    values = {}
    for override in parsed:
        key = override.key_or_group
        if key == STUDY_SELECTOR or key.startswith(STUDY_SELECTOR + "."):
            continue
        value = override.value()
        values[key] = override.get_value_element_as_str() if isinstance(value, (list, dict)) else value
    return values


def swept_params(overrides: list[dict[str, Any]]) -> list[str]:
    """The override keys with more than one value across a sweep's jobs, seed excepted."""
    frame = pd.DataFrame(overrides)
    return [key for key in frame if key != SEED and frame[key].nunique(dropna=False) > 1]


def read_seed(job_dir: Path) -> Any:
    """``seed`` from the composed config (resolved), or None without one."""
    path = job_dir / CONFIG
    try:
        return OmegaConf.select(OmegaConf.load(path), SEED) if path.is_file() else None
    except Exception as exc:  # YAML or interpolation errors in a damaged file
        raise Unreadable(f"{path}: {describe(exc)}") from exc


def trial_states_by_job(files: OptunaFiles | None) -> dict[str, str]:
    """Optuna's state of each trial (COMPLETE, PRUNED, FAIL, RUNNING) by job dir name (= trial number)."""
    if files is None or files.trials.empty:
        return {}
    return dict(zip(files.trials["number"].astype(str), files.trials["state"], strict=True))
