"""Read sweep dirs into DataFrames. The report's only input is the files each job writes:
``.hydra/overrides.yaml``, ``.hydra/config.yaml``, ``history.csv`` and ``metrics.json``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import pandas as pd
import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from sweeplab.jobfiles import HISTORY, METRIC_KEYS, METRICS, read_metrics
from sweeplab.report.optuna_files import OptunaFiles, read_optuna_files
from sweeplab.report.values import config_label

OVERRIDES = Path(".hydra") / "overrides.yaml"
CONFIG = Path(".hydra") / "config.yaml"

MISSING = "missing"  # the status of a job dir without metrics.json (killed before it wrote one)
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
    paths = dict(zip(sweep_names(dirs), dirs))
    job_dirs = {name: find_job_dirs(path) for name, path in paths.items()}
    optuna = {name: files for name, path in paths.items() if (files := read_optuna_files(path)) is not None}

    records: list[dict[str, Any]] = []
    histories: list[pd.DataFrame] = []
    swept: dict[str, list[str]] = {}
    override_keys: dict[str, None] = {}  # every override key, in order of first appearance
    for name, dirs_of_sweep in job_dirs.items():
        overrides = [read_overrides(job_dir) for job_dir in dirs_of_sweep]
        swept[name] = swept_params(overrides)
        override_keys.update(dict.fromkeys(key for job_overrides in overrides for key in job_overrides))
        trial_states = trial_states_by_job(optuna.get(name))
        for job_dir, job_overrides in zip(dirs_of_sweep, overrides):
            records.append(job_record(name, job_dir, job_overrides, trial_states))
            if (job_dir / HISTORY).is_file():
                histories.append(pd.read_csv(job_dir / HISTORY).assign(sweep=name, job=job_dir.name))

    params = [key for key in override_keys if key != SEED]
    columns = ["sweep", "job", "status", "reason", *params, SEED, *METRIC_COLUMNS]
    jobs = pd.DataFrame(records).reindex(columns=columns + (["trial_state"] if optuna else []))
    labels = [config_label(jobs[jobs["sweep"] == name], swept_of_sweep) for name, swept_of_sweep in swept.items()]
    jobs.insert(2, "config", pd.concat(labels))
    history = (pd.concat(histories, ignore_index=True) if histories
               else pd.DataFrame(columns=["sweep", "job", "epoch", "val_acc"]))
    return Sweeps(jobs=jobs, histories=history, swept=swept, paths=paths, optuna=optuna)


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
    if not path.is_file():
        return {}
    parsed = OverridesParser.create().parse_overrides(yaml.safe_load(path.read_text()) or [])
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


def job_record(sweep: str, job_dir: Path, overrides: dict[str, Any], trial_states: dict[str, str]) -> dict[str, Any]:
    """One row of the jobs table. A job dir without metrics.json gets status ``missing``."""
    metrics = read_metrics(job_dir) if (job_dir / METRICS).is_file() else {"status": MISSING}
    record = {"sweep": sweep, "job": job_dir.name, **metrics, **overrides}
    if SEED not in overrides:
        record[SEED] = read_seed(job_dir)
    if trial_states:
        record["trial_state"] = trial_states.get(job_dir.name, MISSING)
    return record


def read_seed(job_dir: Path) -> Any:
    """``seed`` from the composed config (resolved), or None without one."""
    path = job_dir / CONFIG
    return OmegaConf.select(OmegaConf.load(path), SEED) if path.is_file() else None


def trial_states_by_job(files: OptunaFiles | None) -> dict[str, str]:
    """Optuna's state of each trial (COMPLETE, PRUNED, FAIL, RUNNING) by job dir name (= trial number)."""
    if files is None or files.trials.empty:
        return {}
    return dict(zip(files.trials["number"].astype(str), files.trials["state"]))
