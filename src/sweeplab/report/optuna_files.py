"""An Optuna sweep's own files: ``optimization_results.yaml``, ``trials.csv``, and the study they name.

The sweeper writes both files into the sweep dir; a job dir's name is its trial number.
``optimization_results.yaml`` holds ``study_name``, ``storage`` (optional), ``directions``,
``n_trials`` and ``best`` and/or ``pareto``; ``trials.csv`` is ``Study.trials_dataframe()``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import optuna
import pandas as pd
import yaml
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from sweeplab.job.trial import STORAGE as STORAGE_VARIABLE
from sweeplab.job.trial import connect
from sweeplab.jobfiles import OPTUNA_RESULTS, OPTUNA_TRIALS
from sweeplab.report.files import ReportError
from sweeplab.report.values import wants_log_scale

PARAM_PREFIX = "params_"


@dataclass
class OptunaFiles:
    results: dict[str, Any]  # optimization_results.yaml; {} while the study has not written it
    trials: pd.DataFrame  # trials.csv, one row per trial; empty while the study has not written it

    @property
    def objective_columns(self) -> list[str]:
        """``value`` for one objective, ``values_0``, ``values_1``, ... for several."""
        if "value" in self.trials:
            return ["value"]
        return sorted((c for c in self.trials if c.startswith("values_")), key=lambda c: int(c.split("_")[1]))

    @property
    def directions(self) -> list[str]:
        """From optimization_results.yaml; without it every objective is taken as maximised."""
        return list(self.results.get("directions") or ["maximize"] * max(1, len(self.objective_columns)))

    @property
    def objective_labels(self) -> list[str]:
        return [objective_label(self.directions, index) for index in range(len(self.directions))]


def read_optuna_files(sweep_dir: Path) -> OptunaFiles | None:
    """The sweep's Optuna files, or None for a sweep that has neither (a grid)."""
    results_path, trials_path = sweep_dir / OPTUNA_RESULTS, sweep_dir / OPTUNA_TRIALS
    if not results_path.is_file() and not trials_path.is_file():
        return None
    results = read_file(results_path, lambda path: yaml.safe_load(path.read_text())) if results_path.is_file() else {}
    if not isinstance(results or {}, dict):
        raise ReportError(f"{results_path}: not a mapping of results (a {type(results).__name__})")
    trials = read_file(trials_path, pd.read_csv) if trials_path.is_file() else pd.DataFrame()
    if not trials.empty and not {"number", "state"} <= set(trials):
        raise ReportError(f"{trials_path}: no columns number and state, so not Optuna's trials table")
    return OptunaFiles(results=results or {}, trials=trials)


def read_file(path: Path, read: Callable[[Any], Any]) -> Any:
    """``read(path)``, or one line naming the file and what is wrong with it."""
    try:
        return read(path)
    except (OSError, ValueError, yaml.YAMLError) as exc:  # pandas' EmptyDataError and ParserError are ValueErrors
        reason = " ".join(f"{type(exc).__name__}: {exc}".split())
        raise ReportError(f"{path}: cannot read it ({reason})") from exc


def load_study(files: OptunaFiles, sweep_dir: Path, storage: str | None = None) -> tuple[optuna.Study, str]:
    """The study from its storage if that loads, else rebuilt from trials.csv; and which it was.

    ``storage`` is the URL the user gave (``--storage`` or ``SWEEPLAB_STORAGE``); without it only a
    storage file inside the sweep dir is opened: a sweep dir received from someone else must not make
    the report connect to whatever server it names. No password is ever part of the text returned."""
    named = str(files.results.get("storage") or "")
    url = storage or named
    try:
        opened = connect(storage) if storage else open_storage(named, sweep_dir)
        study = optuna.load_study(study_name=files.results["study_name"], storage=opened)
        return study, f"loaded from its storage ({masked(url, url)})"
    # Any failure here (no storage given, a file gone, a database down) leaves trials.csv to rely on.
    except Exception as exc:
        why = masked(f"storage not loaded: {type(exc).__name__}: {exc}", url)
        return rebuild_study(files), f"rebuilt from {OPTUNA_TRIALS} ({' '.join(why.split())})"


class NotOpened(Exception):
    """A storage the sweep dir names that the report does not open without the user's word."""


def open_storage(storage: str, sweep_dir: Path) -> str | optuna.storages.BaseStorage:
    """The storage file inside the sweep dir that ``storage`` names: a SQLite URL or a journal file
    (also as the sweeper describes it, ``JournalStorage(path)``). A missing file raises instead of
    letting Optuna create an empty database; a server is not opened."""
    if not storage:
        raise NotOpened(f"{OPTUNA_RESULTS} names no storage; pass --storage URL to open the study")
    if storage.startswith("sqlite:///"):
        return f"sqlite:///{study_file(storage.removeprefix('sqlite:///'), sweep_dir)}"
    if "://" in storage:
        raise NotOpened(f"{masked(storage, storage)} is a server the sweep dir names, not opened without your "
                        f"word: pass --storage URL or set {STORAGE_VARIABLE} to open it")
    journal = re.fullmatch(r"JournalStorage\((.*)\)", storage)
    path = study_file(journal.group(1) if journal else storage, sweep_dir)
    return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))


def study_file(name: str, sweep_dir: Path) -> Path:
    """The file ``name`` (relative: to the sweep dir) if it lies inside the sweep dir, or a file of
    that name in the sweep dir, where it still is after the sweep dir was moved or copied."""
    given = Path(name) if Path(name).is_absolute() else sweep_dir / name
    inside = sweep_dir.resolve()
    for path in (given, sweep_dir / given.name):
        if path.is_file() and path.resolve().is_relative_to(inside):
            return path
    raise FileNotFoundError(f"no file {given} inside the sweep dir {sweep_dir}; pass --storage URL to open "
                            "a storage elsewhere")


def masked(text: str, url: str) -> str:
    """``text`` with the password of ``url`` (if any) shown as ``***``."""
    try:
        password = make_url(url).password
    except (ArgumentError, ValueError):
        return text
    return text.replace(str(password), "***") if password else text


def rebuild_study(files: OptunaFiles) -> optuna.Study:
    """An in-memory study holding trials.csv's completed trials, with distributions inferred from
    the values seen (trials.csv does not record them): ints, floats (log-scaled as on the plots'
    axes), anything else categorical. Each keeps its number in the study as user attr ``number``."""
    study = optuna.create_study(directions=files.directions)
    if files.trials.empty:
        return study
    distributions = infer_distributions(files.trials)
    for row in files.trials[files.trials["state"] == "COMPLETE"].to_dict("records"):
        params = {name: row[PARAM_PREFIX + name] for name in distributions if not pd.isna(row[PARAM_PREFIX + name])}
        study.add_trial(optuna.trial.create_trial(
            params=params,
            distributions={name: distributions[name] for name in params},
            values=[row[column] for column in files.objective_columns],
            user_attrs={REBUILT_NUMBER: int(row["number"])},
        ))
    return study


def infer_distributions(trials: pd.DataFrame) -> dict[str, BaseDistribution]:
    distributions: dict[str, BaseDistribution] = {}
    for column in (c for c in trials if c.startswith(PARAM_PREFIX)):
        name, values = column[len(PARAM_PREFIX):], trials[column].dropna()
        if values.empty:
            continue
        if pd.api.types.is_integer_dtype(values):
            distributions[name] = IntDistribution(int(values.min()), int(values.max()))
        elif pd.api.types.is_float_dtype(values):
            log = wants_log_scale(name, values)
            distributions[name] = FloatDistribution(float(values.min()), float(values.max()), log=log)
        else:
            distributions[name] = CategoricalDistribution(list(values.unique()))
    return distributions


def param_importances(study: optuna.Study) -> tuple[str, dict[str, float]]:
    """What the importances are for, and Optuna's importances (its default evaluator, PED-ANOVA):
    for one objective, of reaching its best values; for several, of reaching the Pareto front."""
    goal = "the Pareto front" if len(study.directions) > 1 else f"the objective ({study.direction.name.lower()})"
    return goal, optuna.importance.get_param_importances(study)


def objective_label(directions: list[str], index: int) -> str:
    """``objective (maximize)``, or ``objective 1 (minimize)`` when there are several."""
    if len(directions) == 1:
        return f"objective ({directions[0]})"
    return f"objective {index} ({directions[index]})"


# A trial's state as a job status, for jobs of an app that writes no metrics.json (any Hydra app).
JOB_STATUS_OF_STATE = {"COMPLETE": "ok", "PRUNED": "pruned", "FAIL": "failed", "RUNNING": "running",
                       "WAITING": "running"}
REBUILT_NUMBER = "number"  # a rebuilt study's trial: its number in the study
PARETO = "pareto"  # jobs.csv's column: the trial is on the Pareto front (or is the best, for one objective)


def study_trials(study: optuna.Study, files: OptunaFiles) -> pd.DataFrame:
    """One row per trial, from the study: number, state, ``value`` (or ``values_0``, ...), the params
    (``params_x``), the intermediate values reported (how many, the last step and value), and whether
    it is on the Pareto front (for one objective: the best trial). A study rebuilt from trials.csv
    holds its completed trials only: then every trial's row is trials.csv's, without intermediate values."""
    trials = study.get_trials(deepcopy=False)
    completed = any(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    if trials and REBUILT_NUMBER in trials[0].user_attrs:
        front = {trial.user_attrs[REBUILT_NUMBER] for trial in study.best_trials}
        columns = ["number", "state", *files.objective_columns]
        frame = files.trials[columns + [c for c in files.trials if c.startswith(PARAM_PREFIX)]].copy()
        return frame.assign(intermediate_values=pd.NA, last_step=pd.NA, last_intermediate_value=pd.NA,
                            **{PARETO: files.trials["number"].isin(front)})
    frame = study.trials_dataframe(attrs=("number", "state", "value", "params"))
    if frame.empty:
        frame = pd.DataFrame(columns=["number", "state", *files.objective_columns])
    frame["state"] = frame["state"].astype(str)
    front = {trial.number for trial in study.best_trials} if completed else set()
    frame["intermediate_values"] = [len(t.intermediate_values) for t in trials]
    frame["last_step"] = [t.last_step for t in trials]
    frame["last_intermediate_value"] = [t.intermediate_values.get(t.last_step) if t.last_step is not None
                                        else None for t in trials]
    frame[PARETO] = frame["number"].isin(front)
    return frame


def with_trials(jobs: pd.DataFrame, sweep: str, trials: pd.DataFrame) -> pd.DataFrame:
    """``jobs`` with each of ``sweep``'s jobs (named by trial number) given its trial's state, objective
    values and Pareto mark; a job without metrics.json (an app other than train.py) takes its status
    from its trial's state."""
    by_job = trials.assign(job=trials["number"].astype(str)).set_index("job")
    mine = jobs["sweep"] == sweep
    job_names = jobs.loc[mine, "job"].astype(str)
    jobs = jobs.copy()
    jobs.loc[mine, "trial_state"] = job_names.map(by_job["state"]).fillna("missing").to_numpy()
    objectives = [column for column in trials if column == "value" or column.startswith("values_")]
    for column in [*objectives, PARETO]:
        if column not in jobs:
            jobs[column] = pd.Series(pd.NA, index=jobs.index, dtype=object)
        jobs.loc[mine, column] = job_names.map(by_job[column]).to_numpy()
    without_metrics = mine & (jobs["status"] == "missing")
    jobs.loc[without_metrics, "status"] = jobs.loc[without_metrics, "trial_state"].map(JOB_STATUS_OF_STATE).fillna(
        "missing")
    return jobs
