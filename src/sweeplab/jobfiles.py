"""The files a job writes into its dir: the interface between runs, sweepers and reports.

Every write goes to a temporary file in the same dir and is renamed over the target, so a killed
job leaves the previous complete version or nothing, never half a file.
"""
from __future__ import annotations

import csv
import functools
import io
import json
import math
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Sequence, get_type_hints

import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser

from sweeplab.errors import ConfigError

HISTORY = "history.csv"
METRICS = "metrics.json"
CHECKPOINT = "checkpoint.pt"
# what the Optuna sweeper writes into an Optuna sweep dir, beside the job dirs
OPTUNA_RESULTS = "optimization_results.yaml"
OPTUNA_TRIALS = "trials.csv"
# Values of metrics.json's "status": finished ok first, then each way of not finishing.
STATUSES = ("ok", "diverged", "pruned", "failed", "interrupted", "running")
FINISHED = STATUSES[:3]  # a rerun of the sweep skips these jobs
# What a reader says of a job whose metrics.json does not say: none (killed before it wrote one, or
# in a report, a job of the grid that never started), or a file that cannot be read (its reason names it).
MISSING = "missing"
UNREADABLE = "unreadable"
# in a grid's sweep dir, beside the job dirs: every invocation's grid and start and end times
SWEEP = "sweep.yaml"


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


def end_a_job_left_running(job_dir: Path, reason: str) -> None:
    """Record as ``failed`` a job whose metrics.json still says ``running`` after its launcher has
    returned: its process died running it (a pool worker killed with -9), so it never ended itself, and a
    sweeper that counts the job as failed must not leave a file that says otherwise."""
    try:
        metrics = read_metrics(job_dir)
    except (OSError, ValueError):  # the job never got as far as writing it, or wrote it half
        return
    if metrics.get("status") == "running":
        kept = {key: value for key, value in metrics.items() if key in METRIC_KEYS}
        write_metrics(job_dir, Metrics(**{**kept, "status": "failed", "reason": reason}))


def read_metrics(job_dir: Path) -> dict[str, Any]:
    """metrics.json as written, as a dict: files from older versions may lack keys of :class:`Metrics`."""
    return json.loads((job_dir / METRICS).read_text())


def objective_value(metrics: Metrics, objective: str | Sequence[str]) -> float | tuple[float, ...]:
    """The metric(s) named by ``objective``; nan when the run diverged (sweepers record it as failed)."""
    names = [objective] if isinstance(objective, str) else list(objective)
    values = tuple(
        math.nan if metrics.status == "diverged" else float(getattr(metrics, name)) for name in names
    )
    return values if len(values) > 1 else values[0]


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


# ------------------------------------------------------------------ reading a sweep dir's jobs
# One reader for the grid sweeper's resume and the report: which dirs are jobs, how a job is known
# (its overrides as values), and which of two dirs of one job counts (the newest finished one).

JobKey = frozenset
# libyaml's loader where installed: a sweep's every hydra.yaml is read on each rerun and report
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def job_key(overrides: Sequence[str]) -> JobKey:
    """The overrides as an order-free set of (key, parsed value), so ``lr=0.10`` is ``lr=1e-1``;
    an override this parser cannot read without the app's config is compared as its text."""
    return frozenset(_key_item(text) for text in overrides)


@functools.lru_cache(maxsize=2**14)
def _key_item(text: str) -> tuple[str, str]:
    """One override as (key, parsed value): kept, since a resume and its best line parse each job's
    overrides again, most of which every job shares."""
    try:
        override = OverridesParser.create().parse_override(text)
        return override.get_key_element(), repr(override.value())
    except Exception:
        return text, ""


@dataclass(frozen=True)
class JobDir:
    """A job dir as found: ``num`` and ``overrides`` come from ``.hydra/hydra.yaml`` (None without a
    readable one); ``status`` is metrics.json's, or missing / unreadable, and ``reason`` says why."""

    dir: Path
    num: Optional[int]
    overrides: Optional[tuple[str, ...]]
    status: str
    reason: Optional[str] = None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @property
    def written(self) -> float:
        """When the job last wrote its metrics (or, without them, its dir)."""
        metrics = self.dir / METRICS
        return (metrics if metrics.is_file() else self.dir).stat().st_mtime

    @property
    def precedence(self) -> tuple[bool, float]:
        """Of two dirs of one job, the higher counts: the newest finished one, else the newest."""
        return self.finished, self.written


def find_jobs(sweep_dir: Path) -> list[JobDir]:
    """Every job dir under ``sweep_dir``, at any depth (so any ``hydra.sweep.subdir``): a dir with a
    Hydra job config (``<output_subdir>/hydra.yaml``), a ``.hydra/`` dir or a metrics.json. Its
    overrides come from the job config, else from ``.hydra/overrides.yaml``."""
    jobs: dict[Path, JobDir] = {}
    for hydra_yaml in sorted(sweep_dir.glob("**/hydra.yaml")):
        job = _read_hydra_job(hydra_yaml)
        if job is not None:
            jobs.setdefault(job.dir, job)
    others = [path.parent for pattern in (".hydra", METRICS) for path in sweep_dir.glob(f"**/{pattern}")]
    for job_dir in sorted(set(others) - set(jobs) - {sweep_dir}):
        jobs[job_dir] = _read_job_without_config(job_dir)
    return list(jobs.values())


def _read_job_without_config(job_dir: Path) -> JobDir:
    """A job dir without a Hydra job config: overrides from ``.hydra/overrides.yaml`` where it has one."""
    status, reason = read_status(job_dir)
    num = int(job_dir.name) if job_dir.name.isdigit() else None
    overrides_yaml = job_dir / ".hydra" / "overrides.yaml"
    if not (job_dir / ".hydra").is_dir():
        why = f"{job_dir / '.hydra'}: missing, so the job's overrides and config are unknown"
        return JobDir(job_dir, num, None, status, reason if status == UNREADABLE else why)
    if not overrides_yaml.is_file():
        return JobDir(job_dir, num, (), status, reason)
    try:
        overrides = yaml.safe_load(overrides_yaml.read_text()) or []
        if not isinstance(overrides, list):
            raise TypeError(f"a {type(overrides).__name__}, not a list of overrides")
    except Exception as exc:
        return JobDir(job_dir, num, None, UNREADABLE, f"{overrides_yaml}: {describe(exc)}")
    return JobDir(job_dir, num, tuple(str(o) for o in overrides), status, reason)


def _read_hydra_job(hydra_yaml: Path) -> Optional[JobDir]:
    """The job whose Hydra config ``hydra_yaml`` is; None for a single run's (no job number) or a
    file that is not Hydra's; ``unreadable`` (under ``.hydra/``) when damaged."""
    try:
        hydra = yaml.load(hydra_yaml.read_text(), Loader=_YAML_LOADER)["hydra"]
    except Exception as exc:  # damaged YAML, not a mapping, no hydra key
        if hydra_yaml.parent.name != ".hydra":
            return None
        return JobDir(hydra_yaml.parent.parent, None, None, UNREADABLE, f"{hydra_yaml}: {describe(exc)}")
    try:
        num, overrides = hydra["job"].get("num"), tuple(str(o) for o in hydra["overrides"]["task"])
        recorded, subdir = Path(hydra["runtime"]["output_dir"]), Path(hydra["output_subdir"])
    except Exception:  # not a job's config
        return None
    if num is None:
        return None
    # the job's dir is runtime.output_dir, unless the sweep dir was moved or renamed since
    same = (recorded / subdir / "hydra.yaml").is_file() and (recorded / subdir / "hydra.yaml").samefile(hydra_yaml)
    job_dir = recorded if same else hydra_yaml.parents[len(subdir.parts)]
    return JobDir(job_dir, int(num), overrides, *read_status(job_dir))


def read_status(job_dir: Path) -> tuple[str, Optional[str]]:
    """(status, reason) from metrics.json: missing without one; unreadable, naming the file, when it
    cannot be read or its status is not one of :data:`STATUSES`."""
    path = job_dir / METRICS
    if not path.is_file():
        return MISSING, None
    try:
        metrics = json.loads(path.read_text())
        status = metrics["status"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return UNREADABLE, f"{path}: {describe(exc)}"
    if status not in STATUSES:
        return UNREADABLE, f"{path}: status {json.dumps(status)} is not one of {', '.join(STATUSES)}"
    return status, metrics.get("reason")


def describe(exc: BaseException) -> str:
    """An exception in one line: its type and the first line of its message."""
    return f"{type(exc).__name__}: {exc}".splitlines()[0]


def newest_finished(jobs: Iterable[JobDir]) -> list[JobDir]:
    """One job per set of overrides (by :func:`job_key`), the one of highest precedence; jobs with
    unknown overrides are all kept."""
    best: dict[JobKey, JobDir] = {}
    unknown = []
    for job in jobs:
        if job.overrides is None:
            unknown.append(job)
            continue
        key = job_key(job.overrides)
        if key not in best or job.precedence > best[key].precedence:
            best[key] = job
    return [*best.values(), *unknown]


@dataclass
class Invocation:
    """One run of a grid command into its sweep dir: its jobs' overrides, and when it started and ended
    (None while running, or when its process was killed)."""

    jobs: list[list[str]]
    started: float
    ended: Optional[float] = None

    @classmethod
    def now(cls, jobs: Sequence[Sequence[str]]) -> "Invocation":
        return cls([list(job) for job in jobs], time.time())


def read_invocations(sweep_dir: Path) -> list[Invocation]:
    """sweep.yaml's invocations, oldest first; none in a dir without it (a sweep of an older version)."""
    path = sweep_dir / SWEEP
    if not path.is_file():
        return []
    try:
        return [Invocation(jobs=[list(map(str, job)) for job in entry["jobs"]], started=_seconds(entry["started"]),
                           ended=None if entry.get("ended") is None else _seconds(entry["ended"]))
                for entry in yaml.safe_load(path.read_text())["invocations"]]
    except Exception as exc:
        raise ConfigError(f"{path}: damaged ({describe(exc)}); it lists the grids run into this dir: "
                          "restore it, or give another hydra.sweep.dir") from None


def write_invocations(sweep_dir: Path, invocations: Sequence[Invocation]) -> None:
    entries = [{"started": _iso(i.started), "ended": None if i.ended is None else _iso(i.ended), "jobs": i.jobs}
               for i in invocations]
    text = yaml.safe_dump({"invocations": entries}, sort_keys=False, default_flow_style=None, width=1000)
    write_atomic(sweep_dir / SWEEP, lambda tmp: tmp.write_text(text))


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat()


def _seconds(value: Any) -> float:
    return (value if isinstance(value, datetime) else datetime.fromisoformat(str(value))).timestamp()
