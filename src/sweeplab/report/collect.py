"""Read sweep dirs into DataFrames. The report's only input is the files each job writes:
``.hydra/`` (overrides, config), ``history.csv`` and ``metrics.json``, found and told apart by
:func:`sweeplab.jobfiles.find_jobs` (the grid sweeper's resume reads them the same way), and a grid's
``sweep.yaml``, whose jobs that never started are counted ``missing``.
"""
from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Sequence

import pandas as pd
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from sweeplab.jobfiles import (
    HISTORY,
    METRIC_KEYS,
    METRICS,
    MISSING,
    SWEEP,
    UNREADABLE,
    JobDir,
    describe,
    find_jobs,
    job_key,
    newest_finished,
    read_invocations,
    read_metrics,
)
from sweeplab.report.optuna_files import OptunaFiles, read_optuna_files
from sweeplab.report.values import config_label

CONFIG = Path(".hydra") / "config.yaml"

NOT_STARTED = "not started"  # the job column of a job of the grid that has no dir
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
        if name not in optuna:  # a grid rerun may leave two dirs of one job; Optuna trials may repeat params
            kept = {id(job) for job in newest_finished(dirs_of_sweep)}
            dirs_of_sweep = [job for job in dirs_of_sweep if id(job) in kept]
        jobs = [read_job(job_dir) for job_dir in dirs_of_sweep]
        if name not in optuna:
            jobs += never_started(paths[name], dirs_of_sweep)
        readable = [job for job in jobs if job.overrides is not None]
        swept[name] = swept_params([job.overrides for job in readable])
        override_keys.update(dict.fromkeys(key for job in readable for key in job.overrides))
        trial_states = trial_states_by_job(optuna.get(name))
        for job in jobs:
            record = {"sweep": name, "job": job.name, **job.record}
            if trial_states:
                record["trial_state"] = trial_states.get(job.name, MISSING)
            records.append(record)
            if job.history is not None:
                histories.append(job.history.assign(sweep=name, job=job.name))

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
    """One job as read: ``overrides`` is None when a file of it could not be read (then ``record``
    says ``unreadable`` and names the file and the reason)."""

    name: str  # its dir's name, or NOT_STARTED
    overrides: dict[str, Any] | None
    record: dict[str, Any]  # metrics.json's contents (status first), the overrides and the seed
    history: pd.DataFrame | None


class Unreadable(Exception):
    """A job file that exists but cannot be read; the message names it and says why."""


def read_job(job: JobDir) -> Job:
    """Everything the report needs from one job dir; damage makes it ``unreadable``, never an error."""
    try:
        if job.overrides is None or job.status == UNREADABLE:
            raise Unreadable(job.reason)
        overrides = typed_overrides(job.overrides, job.dir / ".hydra")
        metrics = read_job_metrics(job)
        history = read_history(job.dir)
        seed = overrides[SEED] if SEED in overrides else read_seed(job.dir)
    except Unreadable as exc:
        return Job(job.dir.name, None, {"status": UNREADABLE, "reason": str(exc)}, None)
    return Job(job.dir.name, overrides, {**metrics, **overrides, SEED: seed}, history)


def never_started(sweep_dir: Path, found: list[JobDir]) -> list[Job]:
    """The jobs of the grids in sweep.yaml that have no dir (a sweep killed before it reached them),
    as ``missing``."""
    grids = [invocation.jobs for invocation in read_invocations(sweep_dir)]
    have = {job_key(job.overrides) for job in found if job.overrides is not None}
    wanted = {job_key(overrides): overrides for grid in grids for overrides in grid}
    where = sweep_dir / SWEEP
    missing = []
    for key, overrides in wanted.items():
        if key not in have:
            try:
                values = typed_overrides(overrides, where)
            except Unreadable as exc:
                missing.append(Job(NOT_STARTED, None, {"status": UNREADABLE, "reason": str(exc)}, None))
                continue
            reason = f"never started (a job of the grid in {where})"
            missing.append(Job(NOT_STARTED, values, {"status": MISSING, "reason": reason, **values,
                                                     SEED: values.get(SEED)}, None))
    return missing


def read_job_metrics(job: JobDir) -> dict[str, Any]:
    """metrics.json (status ``missing`` without one); a ``running`` job whose process is gone is ``interrupted``."""
    if job.status == MISSING:
        return {"status": MISSING}
    try:
        metrics = read_metrics(job.dir)
    except (OSError, ValueError) as exc:  # changed since find_jobs read it
        raise Unreadable(f"{job.dir / METRICS}: {describe(exc)}") from exc
    if metrics["status"] == "running":
        metrics["status"], metrics["reason"] = running_state(job.dir, metrics)
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


def sweep_names(dirs: Sequence[Path]) -> list[str]:
    """Each dir's own name (``lr_sgd``), or the paths as given when two names coincide."""
    names = [Path(d).resolve().name for d in dirs]
    return names if len(set(names)) == len(names) else [str(d) for d in dirs]


def find_job_dirs(sweep_dir: Path) -> list[JobDir]:
    """The job dirs of a sweep dir, by job number; raises :class:`NotASweepDir` when it has none."""
    if not sweep_dir.is_dir():
        what = "not a directory" if sweep_dir.exists() else "no such directory"
        raise NotASweepDir(f"{sweep_dir}: {what}; {EXPECTED}")
    if is_job_dir(sweep_dir):
        raise NotASweepDir(f"{sweep_dir}: this is one job's dir, not a sweep dir; {EXPECTED}")
    jobs = find_jobs(sweep_dir)
    if not jobs:
        what = "empty directory" if not any(sweep_dir.iterdir()) else "no job dirs in it"
        raise NotASweepDir(f"{sweep_dir}: {what}; {EXPECTED}")
    return sorted(jobs, key=job_order)


def job_order(job: JobDir) -> tuple[bool, int, str]:
    """Numbered job dirs by number (Hydra's default ``0/``, ``1/``, ... ``10/``), then any others by path."""
    numbered = job.dir.name.isdigit()
    return not numbered, int(job.dir.name) if numbered else 0, str(job.dir)


def is_job_dir(path: Path) -> bool:
    return (path / ".hydra").is_dir() or (path / METRICS).is_file()


def typed_overrides(texts: tuple[str, ...] | list[str], where: Path) -> dict[str, Any]:
    """A job's command-line overrides as typed values (``lr=1e-3`` -> 0.001), without ``+sweep``.
    Lists and dicts become their override text, so every value can be grouped on."""
    try:
        parsed = OverridesParser.create().parse_overrides(list(texts))
    except Exception as exc:  # Hydra's override grammar errors
        raise Unreadable(f"{where}: overrides: {describe(exc)}") from exc
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
