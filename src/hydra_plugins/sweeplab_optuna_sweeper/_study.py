"""Study bookkeeping shared by every worker: storage, the budget tally, the stored spec, result files."""
from __future__ import annotations

import contextlib
import datetime
import errno
import json
import logging
import math
import shutil
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import optuna
import sqlalchemy.event
import sqlalchemy.exc
import yaml
from hydra.errors import CompactHydraException, InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from optuna.distributions import distribution_to_json, json_to_distribution
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy.engine import make_url

from sweeplab.job.trial import FAIL_REASON, JOB_DIR
from sweeplab.jobfiles import (
    METRICS,
    OPTUNA_RESULTS,
    OPTUNA_TRIALS,
    Metrics,
    read_metrics,
    write_atomic,
    write_metrics,
)

from ._optuna_private import record_heartbeat
from ._search_space import SearchSpace

log = logging.getLogger(__name__)

# user attrs on trials: JOB_DIR and FAIL_REASON (set by the job or the sweeper), and
SKIPPED = "skipped"  # asked after the budget was taken (or a duplicate retry); never ran, never counts
# study user attr: what the study searches; a rerun must match it
SPEC = "sweeplab_spec"
RDB_STORAGE = "optuna.storages.RDBStorage"
# a job that finds no room for its files (a full disk, a quota) is a failed trial; other OS errors end the sweep
NO_ROOM = (errno.ENOSPC, errno.EDQUOT)


class StudyError(CompactHydraException):
    """A storage or study problem the user can fix; one message, no traceback."""


def printable(url: str) -> str:
    """``url`` with any password masked, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except sqlalchemy.exc.ArgumentError:
        return url


def has_password(storage: str | DictConfig) -> bool:
    """Whether ``storage`` is a URL with a password in it, or a node (RDBStorage) whose ``url`` is."""
    url = storage if isinstance(storage, str) else OmegaConf.select(storage, "url")
    try:
        return isinstance(url, str) and make_url(url).password is not None
    except sqlalchemy.exc.ArgumentError:
        return False


@contextlib.contextmanager
def experimental_allowed() -> Iterator[None]:
    """Silence Optuna's ExperimentalWarning for the calls inside: heartbeats (how killed workers' trials
    are found) and some samplers and their options are still marked experimental in Optuna 4 and 5."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        yield


def open_storage(storage: str | DictConfig, heartbeat_interval: int, grace_period: int) -> optuna.storages.BaseStorage:
    """The storage of a URL (an RDB storage) or of a ``_target_`` node (RDBStorage, JournalStorage, ...).

    An RDB storage gets heartbeats, so trials of killed workers are found and marked FAIL, unless
    its node sets them itself. Creating the schema races when several processes open a fresh
    database at once (PostgreSQL: ``type "studydirection" already exists``): retry a few times.
    """
    described = describe_storage(storage)
    if isinstance(storage, str):
        engine_kwargs = {"connect_args": {"timeout": 60}} if storage.startswith("sqlite") else None
        storage = OmegaConf.create({"_target_": RDB_STORAGE, "url": storage, "engine_kwargs": engine_kwargs})
    options: dict[str, Any] = {}
    if storage._target_ == RDB_STORAGE:
        options = {"heartbeat_interval": heartbeat_interval, "grace_period": grace_period,
                   "heartbeat_stale_trial_callback": mark_interrupted}
        options = {key: value for key, value in options.items() if storage.get(key) is None}
    for attempt in range(5):
        try:
            with experimental_allowed():
                return instantiate(storage, **options)
        except InstantiationException as exc:
            error = database_error(exc)
            full = error is not None and disk_full(error, storage)
            if attempt == 4 or error is None or full:  # a race between processes is a database's answer
                reason = one_line((exc.__cause__ or exc) if error is None else error.orig)
                raise StudyError(f"storage {described}: cannot open it{': disk full' if full else ''} ({reason})") \
                    from exc
            time.sleep(0.5 * (attempt + 1))
    raise AssertionError("unreachable")


@contextlib.contextmanager
def storage_errors(storage: str | DictConfig) -> Iterator[None]:
    """Raise a storage's failure inside as one :class:`StudyError` line (a full disk, a lost connection),
    whichever Optuna call met it: Optuna raises ``StorageInternalError`` from the database's error, and
    ``study.optimize`` an ``AssertionError`` while that propagates. What a study finished is committed
    in the storage before such a failure, so a rerun resumes it."""
    try:
        yield
    except StudyError:
        raise
    except Exception as exc:
        error = database_error(exc)
        if not isinstance(error, sqlalchemy.exc.OperationalError):
            raise
        what = "cannot write to it: disk full" if disk_full(error, storage) else "the database failed"
        raise StudyError(f"storage {describe_storage(storage)}: {what} ({one_line(error.orig)})") from exc


def database_error(exc: BaseException) -> sqlalchemy.exc.DBAPIError | None:
    """The database's own error in ``exc``'s chain of causes, or None."""
    seen: BaseException | None = exc
    while seen is not None and not isinstance(seen, sqlalchemy.exc.DBAPIError):
        seen = seen.__cause__ or seen.__context__
    return seen


def disk_full(error: sqlalchemy.exc.DBAPIError, storage: str | DictConfig) -> bool:
    """Whether the database failed for want of disk space: SQLite says "database or disk is full", and
    "disk I/O error" for some writes that find no room (as for a failing disk: so only where its file's
    filesystem is full); PostgreSQL gives SQLSTATE 53100."""
    words = str(error.orig)
    if "database or disk is full" in words or getattr(error.orig, "pgcode", None) == "53100":
        return True
    return "disk I/O error" in words and sqlite_disk_full(storage)


def sqlite_disk_full(storage: str | DictConfig) -> bool:
    """Whether a SQLite storage's file is on a filesystem with less than a MiB left."""
    url = storage if isinstance(storage, str) else OmegaConf.select(storage, "url")
    try:
        parsed = make_url(str(url))
    except sqlalchemy.exc.ArgumentError:
        return False
    if not parsed.drivername.startswith("sqlite") or not parsed.database:
        return False
    try:
        return shutil.disk_usage(Path(parsed.database).absolute().parent).free < 1 << 20
    except OSError:
        return False


def one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def commit_to_wal(storage: optuna.storages.BaseStorage) -> None:
    """Make a SQLite storage commit to a write-ahead log without waiting for the disk (``journal_mode=WAL``,
    ``synchronous=NORMAL``). A trial commits about ten times (ask, params, attrs, report, tell, heartbeat); with
    SQLite's default rollback journal each commit waits for the disk twice, milliseconds that outweigh a fused
    trial's training. A killed process loses nothing committed; a power cut may lose the last commits, never
    the file (trials left RUNNING then go stale and run again). WAL needs every process that opens the file on
    this machine, as fused trials are (they run in the sweeper's processes); :func:`leave_wal` undoes it."""
    if isinstance(storage, optuna.storages.RDBStorage) and storage.engine.dialect.name == "sqlite":
        sqlalchemy.event.listen(storage.engine, "connect", _wal_pragmas)
        storage.engine.dispose()  # the connection opened to create the tables gets them too


def _wal_pragmas(connection: Any, _: Any) -> None:
    connection.execute("PRAGMA journal_mode=WAL")  # kept in the file: other processes' connections use it too
    connection.execute("PRAGMA synchronous=NORMAL")  # per connection


def leave_wal(storage: optuna.storages.BaseStorage) -> None:
    """Put a SQLite storage back to SQLite's default rollback journal when the sweep ends, so the file reads
    as before anywhere (a read-only copy, another machine). Where another process still has it open (Optuna's
    dashboard), it stays in WAL mode, which SQLite and Optuna read as well."""
    if not (isinstance(storage, optuna.storages.RDBStorage) and storage.engine.dialect.name == "sqlite"):
        return
    storage.engine.dispose()  # this process's own other connections too
    with contextlib.suppress(sqlalchemy.exc.OperationalError), storage.engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA journal_mode=DELETE")


def close_storage(storage: optuna.storages.BaseStorage) -> None:
    """Close an RDB storage's connections (forked workers must open their own)."""
    if isinstance(storage, optuna.storages.RDBStorage):
        storage.engine.dispose()


def describe_storage(storage: str | DictConfig) -> str:
    """A URL with its password masked, or a storage node as ``Class(url or file)``, for messages."""
    if isinstance(storage, str):
        return printable(storage)
    where = OmegaConf.select(storage, "url") or OmegaConf.select(storage, "log_storage.file_path")
    name = str(storage._target_).rsplit(".", 1)[-1]
    return f"{name}({printable(str(where))})" if where else name


def mark_interrupted(study: optuna.Study, trial: FrozenTrial) -> None:
    """Heartbeat callback for a trial whose worker died: its job dir says so too."""
    job_dir = trial.user_attrs.get(JOB_DIR)
    log.warning("trial %d: its worker stopped sending heartbeats; marked FAIL (interrupted)", trial.number)
    if job_dir and (Path(job_dir) / METRICS).exists() and read_metrics(Path(job_dir))["status"] == "running":
        write_metrics(Path(job_dir), Metrics(
            status="interrupted", reason="its worker stopped (no heartbeat); the trial was marked FAIL"))


def spec_of(space: SearchSpace, directions: Sequence[str]) -> dict[str, Any]:
    spec = {
        "space": {key: distribution_to_json(dist) for key, dist in space.distributions.items()},
        "fixed": space.fixed,
        "directions": list(directions),
    }
    return json.loads(json.dumps(spec))  # as it will read back from the storage


def check_spec(study: optuna.Study, spec: dict[str, Any], url: str) -> None:
    """Store the spec of a new study; refuse to mix a rerun with a different one into an old study."""
    stored = study.user_attrs.get(SPEC)
    if stored is None:
        study.set_user_attr(SPEC, spec)
        return
    if stored == spec:
        return
    def readable(part: str, value: Any) -> Any:
        return json_to_distribution(value) if part == "space" and value != "(absent)" else value

    differences = []
    for part in ("space", "fixed"):
        for key in sorted(set(stored[part]) | set(spec[part])):
            before, now = stored[part].get(key, "(absent)"), spec[part].get(key, "(absent)")
            if before != now:
                differences.append(f"{key}: was {readable(part, before)}, now {readable(part, now)}")
    if stored["directions"] != spec["directions"]:
        differences.append(f"directions: was {stored['directions']}, now {spec['directions']}")
    raise StudyError(
        f"study '{study.study_name}' in {printable(url)} was started with another search space "
        f"({'; '.join(differences)}). Rerun with the same settings to resume it, pick another "
        "hydra.sweeper.study_name, or delete the study to start over."
    )


@dataclass
class Tally:
    """Trials by what they mean for the budget."""

    complete: int = 0
    pruned: int = 0
    failed: int = 0  # the job failed: counts toward n_trials
    running: int = 0
    interrupted: int = 0  # FAIL without a job failure (killed, Ctrl-C): does not count
    skipped: int = 0  # asked after the budget was taken (on another machine at the same moment)

    @property
    def finished(self) -> int:
        return self.complete + self.pruned + self.failed

    @classmethod
    def of(cls, trials: Sequence[FrozenTrial]) -> Tally:
        tally = cls()
        for trial in trials:
            if trial.state == TrialState.COMPLETE:
                tally.complete += 1
            elif trial.state == TrialState.PRUNED:
                tally.pruned += 1
            elif interrupted(trial):
                tally.interrupted += 1
            elif trial.state == TrialState.FAIL:
                if FAIL_REASON in trial.user_attrs:
                    tally.failed += 1
                else:
                    tally.skipped += 1
            else:  # RUNNING, WAITING
                tally.running += 1
        return tally


def interrupted(trial: FrozenTrial) -> bool:
    """FAIL without a job failure: its worker was killed or stopped; it does not count, and runs again."""
    return trial.state == TrialState.FAIL and not {FAIL_REASON, SKIPPED} & set(trial.user_attrs)


def beat_once_for_the_silent(
    study: optuna.Study, storage: optuna.storages.BaseStorage, grace_period: int, seen: set[int]
) -> None:
    """Record one heartbeat for each trial RUNNING longer than ``grace_period`` that this worker has
    not seen before. A trial whose worker died between ``ask()`` and its first heartbeat has none,
    and Optuna fails as stale only trials with an old one: after this beat it goes stale in
    ``grace_period`` like any other, so a resumed study never waits for it for ever. A trial whose
    worker lives beats on: one more beat changes nothing."""
    now = datetime.datetime.now()
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        started = trial.datetime_start
        if trial.number in seen or started is None or (now - started).total_seconds() < grace_period:
            continue
        seen.add(trial.number)
        study_id = storage.get_study_id_from_name(study.study_name)
        record_heartbeat(storage, storage.get_trial_id_from_study_id_trial_number(study_id, trial.number))


def retry_next_interrupted(study: optuna.Study, count: int = 1) -> None:
    """Queue the first ``count`` interrupted trials that nothing retries yet, with their params (Optuna's
    own retry callback), so the next trials asked run them: a grid study ends with every point once. A
    worker queues as many as it asks next (``fuse``): a trial asked beyond the queue would draw a new
    grid point while an interrupted one is still to be retried, and the grid sampler, which counts
    interrupted points as visited, would run some point twice."""
    trials = study.get_trials(deepcopy=False)
    retried = {retry_of(trial) for trial in trials} - {None}
    for trial in [t for t in trials if interrupted(t) and t.number not in retried][:count]:
        with experimental_allowed():
            RetryHeartbeatStaleTrialCallback()(study, trial)


def retry_of(trial: FrozenTrial) -> int | None:
    """The number of the interrupted trial that ``trial`` reruns, if it is a retry."""
    with experimental_allowed():
        history = RetryHeartbeatStaleTrialCallback.retry_history(trial)
    return history[-1] if history else None


def duplicate_retry(trials: Sequence[FrozenTrial], number: int) -> bool:
    """Whether an earlier trial already retries what trial ``number`` retries (two machines queued
    the same retry at the same moment)."""
    target = retry_of(trials[number])
    return target is not None and any(retry_of(t) == target for t in trials[:number])


def max_failures(n_trials: int, max_failure_rate: float) -> int:
    return math.floor(max_failure_rate * n_trials)


def write_results(study: optuna.Study, sweep_dir: Path, url: str, n_trials: int) -> None:
    """optimization_results.yaml and trials.csv, rewritten (atomically) as the study grows (:func:`results_due`).

    The results file starts with hydra-optuna-sweeper's keys (``name``, then ``best_params`` and
    ``best_value``, or ``solutions`` for several objectives), so scripts written for it read ours.
    """
    trials = study.get_trials(deepcopy=False)
    tally = Tally.of(trials)
    results: dict[str, Any] = {"name": "optuna"}
    if tally.complete and len(study.directions) == 1:
        results.update(best_params=dict(study.best_trial.params), best_value=study.best_value)
    elif tally.complete:
        results["solutions"] = [{"params": dict(t.params), "values": list(t.values)} for t in study.best_trials]
    results.update({
        "study_name": study.study_name,
        "storage": printable(url),
        "directions": [d.name.lower() for d in study.directions],
        "n_trials": n_trials,
        "finished": tally.finished,
        "states": {"complete": tally.complete, "pruned": tally.pruned, "failed": tally.failed,
                   "running": tally.running, "interrupted": tally.interrupted, "skipped": tally.skipped},
    })
    if tally.complete:
        best = [summary(t) for t in study.best_trials]
        if len(study.directions) == 1:
            results["best"] = best[0]
        else:
            results["pareto"] = best
    write_atomic(sweep_dir / OPTUNA_RESULTS, lambda tmp: tmp.write_text(yaml.safe_dump(results, sort_keys=False)))
    frame = study.trials_dataframe()
    write_atomic(sweep_dir / OPTUNA_TRIALS, lambda tmp: frame.to_csv(tmp, index=False))


def summary(trial: FrozenTrial) -> dict[str, Any]:
    return {"number": trial.number, "values": list(trial.values), "params": dict(trial.params),
            "job_dir": trial.user_attrs.get(JOB_DIR)}


def results_due(finished: int, written: int) -> bool:
    """Whether the results files are due a rewrite, ``written`` trials having finished at the last one: after
    each of a study's first trials, then once its finished trials have grown by an eighth. A rewrite reads every
    trial, so this keeps its cost per trial constant however large the study grows. The storage holds every
    trial meanwhile, and each sweep rewrites the files at its end (a resumed one too)."""
    return finished - written >= max(1, written // 8)


def standing(study: optuna.Study, tally: Tally, n_trials: int) -> str:
    """The end of a trial's line: the best so far and what is left (read once for a batch's lines)."""
    best = ""
    if tally.complete and len(study.directions) == 1:
        best_trial = study.best_trial
        best = f" | best {best_trial.value:.4f} (trial {best_trial.number})"
    elif tally.complete:
        best = f" | {len(study.best_trials)} on the Pareto front"
    return f"{best} | {tally.finished}/{n_trials} finished, {max(0, n_trials - tally.finished)} left"


def trial_line(trial: FrozenTrial, standing: str) -> str:
    """One progress line: the trial, its params and value, then the study's ``standing``."""
    params = " ".join(f"{k}={_short(v)}" for k, v in trial.params.items())
    if trial.state == TrialState.COMPLETE:
        outcome = "COMPLETE " + ", ".join(f"{v:.4f}" for v in trial.values)
    elif trial.state == TrialState.PRUNED:
        last = trial.last_step
        value = trial.intermediate_values.get(last) if last is not None else None
        outcome = f"PRUNED after epoch {last}" + (f" at {value:.4f}" if value is not None else "")
    else:
        outcome = f"{trial.state.name} ({trial.user_attrs.get(FAIL_REASON) or trial.user_attrs.get(SKIPPED)})"
    return f"trial {trial.number} {outcome} | {params}{standing}"


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
