"""Experiment tracking: each job also as a run in MLflow and/or TensorBoard (the ``logger`` group).

A tracker copies what the job writes into its own files (config, history.csv rows, metrics.json)
into a tracking tool; the job's files stay the source of truth. Trackers open before training, so a
bad URI or an unwritable dir ends the job with one line before any work; once training runs, a
tracker that fails warns once and is dropped, and the job goes on. mlflow and tensorboard are
imported only when their logger is configured.
"""
from __future__ import annotations

import contextlib
import fcntl
import logging
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator
from urllib.parse import unquote

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

import sweeplab.job.trial
from sweeplab import targets
from sweeplab.errors import ConfigError
from sweeplab.jobfiles import NUMERIC_METRICS, Metrics, ended_by
from sweeplab.training.trainer import Callback, EpochRecord

if TYPE_CHECKING:
    import optuna

log = logging.getLogger(__name__)

# history.csv's columns that are metrics (epoch is the step)
EPOCH_METRICS = tuple(name for name in EpochRecord.__dataclass_fields__ if name != "epoch")
# metrics.json's numbers that history.csv does not already hold as its last row
FINAL_METRICS = tuple(name for name in NUMERIC_METRICS if name not in EPOCH_METRICS)
SWEEP_ROLE = "sweeplab.role"  # tag of a sweep's parent run: "sweep"
MLFLOW_STATUS = {"ok": "FINISHED", "pruned": "FINISHED", "diverged": "FAILED", "failed": "FAILED",
                 "interrupted": "KILLED"}


@dataclass
class Job:
    """What a tracker needs to know about the job besides its config."""

    dir: Path
    sweep_dir: Path  # a multirun's sweep dir; for a single run the dir that holds the run dirs
    trial: optuna.Trial | None  # the Optuna trial the job runs, in a study
    in_sweep: bool = False  # one job of a multirun (a grid or a study), not a single run

    @property
    def name(self) -> str:
        return self.dir.name


class Tracker(Callback):
    """One tracking tool for one job: ``start`` (may raise: the job stops before training), then
    ``on_epoch_end`` per epoch, then ``finish`` with the job's metrics.json contents."""

    def start(self, cfg: DictConfig, job: Job) -> None: ...

    def finish(self, metrics: Metrics) -> None: ...


class MLflowTracker(Tracker):
    """The job as an MLflow run; the sweep (or the Optuna study) as its experiment and as a parent
    run that each of its jobs' runs is nested under (MLflow's ``mlflow.parentRunId`` tag)."""

    def __init__(self, tracking_uri: str | None = None, experiment_name: str | None = None,
                 tags: dict[str, str] | None = None):
        self.tracking_uri = tracking_uri
        self.experiment_name = experiment_name
        self.tags = tags or {}

    def start(self, cfg: DictConfig, job: Job) -> None:
        from mlflow.entities import Param
        from mlflow.tracking import MlflowClient

        uri = self.tracking_uri or f"sqlite:///{job.sweep_dir.resolve() / 'mlflow.db'}"
        name = self.experiment_name or (job.trial.study.study_name if job.trial else job.sweep_dir.name)
        try:
            with sqlite_lock(uri):  # jobs starting together would each create the tables, or the parent run
                self.client = MlflowClient(tracking_uri=uri)
                experiment_id = get_or_create_experiment(self.client, name)
                self.parent_id = sweep_run(self.client, experiment_id, name, job) if job.in_sweep else None
        except Exception as exc:
            raise ConfigError(f"logger.mlflow.tracking_uri={uri!r}: cannot open it ({first_line(exc)})") from exc
        tags = {"job_dir": str(job.dir.resolve()), "status": "running", **{k: str(v) for k, v in self.tags.items()}}
        if job.trial is not None:
            tags |= {"optuna.study_name": job.trial.study.study_name, "optuna.trial_number": str(job.trial.number)}
        if self.parent_id is not None:
            tags["mlflow.parentRunId"] = self.parent_id
        self.run_id = self.client.create_run(experiment_id, run_name=job.name, tags=tags).info.run_id
        self.client.log_batch(self.run_id, params=[Param(k, str(v)) for k, v in flat_config(cfg).items()])
        log.info("mlflow: run %s in experiment %r; see it: mlflow ui --backend-store-uri %s", job.name, name, uri)

    def on_epoch_end(self, record: EpochRecord) -> None:
        self.log_metrics({name: getattr(record, name) for name in EPOCH_METRICS}, record.epoch)

    def finish(self, metrics: Metrics) -> None:
        from mlflow.entities import Param

        numbers = final_numbers(metrics)
        n_parameters = numbers.pop("params", None)  # a count, not a measurement: a param, by a clear name
        if n_parameters is not None:
            self.client.log_batch(self.run_id, params=[Param("n_parameters", str(int(n_parameters)))])
        self.log_metrics(numbers, metrics.epochs_completed or 0)
        self.client.set_tag(self.run_id, "status", metrics.status)
        if metrics.reason:
            self.client.set_tag(self.run_id, "reason", metrics.reason)
        self.client.set_terminated(self.run_id, MLFLOW_STATUS[metrics.status])
        if self.parent_id is not None:  # ended by its last job to end (a rerun's first job reopens it)
            self.client.set_terminated(self.parent_id, "FINISHED")

    def log_metrics(self, values: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(k, v, now, step) for k, v in values.items()])


class TensorBoardTracker(Tracker):
    """The job as a TensorBoard run: scalars per epoch, the config as hparams and text."""

    def __init__(self, save_dir: str | None = None):
        self.save_dir = save_dir

    def start(self, cfg: DictConfig, job: Job) -> None:
        from torch.utils.tensorboard import SummaryWriter
        from torch.utils.tensorboard.summary import hparams

        log_dir = Path(self.save_dir) / job.name if self.save_dir else job.dir / "tensorboard"
        try:
            self.writer = SummaryWriter(str(log_dir))
        except Exception as exc:
            raise ConfigError(
                f"logger.tensorboard: cannot write events to {str(log_dir)!r} ({first_line(exc)})") from exc
        # the hparams plugin's table: every config value beside the final metrics' names
        for summary in hparams(flat_config(cfg), {name: math.nan for name in FINAL_METRICS + EPOCH_METRICS}):
            self.writer.file_writer.add_summary(summary)
        self.writer.add_text("config", f"```\n{OmegaConf.to_yaml(cfg, resolve=True)}```")
        self.writer.flush()
        everyone = Path(self.save_dir) if self.save_dir else job.sweep_dir  # this job's and its siblings' events
        log.info("tensorboard: events in %s; see them: tensorboard --logdir %s", log_dir, everyone)

    def on_epoch_end(self, record: EpochRecord) -> None:
        for name in EPOCH_METRICS:
            self.writer.add_scalar(name, getattr(record, name), record.epoch)
        self.writer.flush()

    def finish(self, metrics: Metrics) -> None:
        for name, value in final_numbers(metrics).items():
            self.writer.add_scalar(name, value, metrics.epochs_completed or 0)
        self.writer.add_text("status", f"{metrics.status}: {metrics.reason}" if metrics.reason else metrics.status)
        self.writer.close()


class Trackers(Callback):
    """The job's trackers as one trainer callback. A tracker that fails after its start warns once
    and is dropped: tracking is a copy, the job's own files are complete without it."""

    def __init__(self, trackers: dict[str, Tracker]):
        self.live = trackers

    def on_epoch_end(self, record: EpochRecord) -> None:
        self.each(lambda tracker: tracker.on_epoch_end(record))

    def finish(self, metrics: Metrics) -> None:
        self.each(lambda tracker: tracker.finish(metrics))
        self.live = {}

    def each(self, call: Callable[[Tracker], None]) -> None:
        for name, tracker in list(self.live.items()):
            try:
                call(tracker)
            except Exception as exc:
                log.warning("logger.%s stopped logging this job (%s); the job goes on, its files are complete",
                            name, first_line(exc))
                del self.live[name]


@contextlib.contextmanager
def tracked(cfg: DictConfig, job_dir: Path) -> Iterator[Trackers]:
    """Start the trackers ``cfg.logger`` names (none: nothing is imported); finish them with the
    job's failure if the block raises. On success the caller calls ``finish`` with the metrics."""
    trackers = Trackers(start_trackers(cfg, job_dir) if cfg.get("logger") else {})
    try:
        yield trackers
    except BaseException as exc:
        trackers.finish(ended_by(exc))
        raise


def start_trackers(cfg: DictConfig, job_dir: Path) -> dict[str, Tracker]:
    job = Job(job_dir, sweep_dir(job_dir), sweeplab.job.trial.current(), in_multirun())
    started: dict[str, Tracker] = {}
    try:
        for name, node in cfg.logger.items():
            if node is not None:
                started[name] = start_tracker(name, node, cfg, job)
    except BaseException:
        Trackers(started).finish(Metrics(status="failed", reason="another logger failed to start"))
        raise
    return started


def start_tracker(name: str, node: DictConfig, cfg: DictConfig, job: Job) -> Tracker:
    """Build the tracker ``logger.<name>`` names and start it; any failure is one ConfigError line."""
    try:
        tracker = targets.build(f"logger.{name}", node)
        tracker.start(cfg, job)
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(f"logger.{name}: cannot start it ({first_line(exc)})") from exc
    return tracker


def in_multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def sweep_dir(job_dir: Path) -> Path:
    """Hydra's sweep dir in a multirun; otherwise the dir that holds the run's dir (outputs/runs)."""
    return Path(HydraConfig.get().sweep.dir) if in_multirun() else job_dir.parent


def sweep_run(client: Any, experiment_id: str, name: str, job: Job) -> str:
    """The id of the sweep's (or study's) parent run in the experiment, created by its first job
    (the caller holds the store's lock, so jobs starting together create one), reopened by every
    job that starts, so it reads RUNNING while any job runs."""
    sweep = str(job.sweep_dir.resolve())
    # matched on the dir here, not in the filter string, which a quote in a path would break
    parents = client.search_runs([experiment_id], filter_string=f"tags.`{SWEEP_ROLE}` = 'sweep'")
    found = [run for run in parents if run.data.tags.get("sweeplab.sweep_dir") == sweep]
    if found:
        client.update_run(found[0].info.run_id, status="RUNNING")
        return found[0].info.run_id
    tags = {SWEEP_ROLE: "sweep", "sweeplab.sweep_dir": sweep}
    if job.trial is not None:
        tags["optuna.study_name"] = job.trial.study.study_name
    return client.create_run(experiment_id, run_name=name, tags=tags).info.run_id


def get_or_create_experiment(client: Any, name: str) -> str:
    """The experiment's id; a job starting at the same time may create it first."""
    from mlflow.exceptions import MlflowException

    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    try:
        return client.create_experiment(name)
    except MlflowException:
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return experiment.experiment_id


@contextlib.contextmanager
def sqlite_lock(uri: str) -> Iterator[None]:
    """Hold an exclusive lock beside a local SQLite file (``<file>.lock``) while the block runs."""
    if not uri.startswith("sqlite:///"):
        yield
        return
    database = Path(unquote(uri[len("sqlite:///"):]))
    database.parent.mkdir(parents=True, exist_ok=True)
    with open(database.with_name(database.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def flat_config(cfg: DictConfig) -> dict[str, str | int | float | bool]:
    """The resolved config as ``a.b.c: value`` (lists and nulls as text), without the logger group."""
    flat: dict[str, Any] = {}

    def add(prefix: str, node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                add(f"{prefix}.{key}" if prefix else str(key), value)
        else:
            flat[prefix] = node if isinstance(node, (str, int, float, bool)) else str(node)

    container = OmegaConf.to_container(cfg, resolve=True)
    container.pop("logger", None)
    add("", container)
    return flat


def final_numbers(metrics: Metrics) -> dict[str, float]:
    """metrics.json's numbers that are not history.csv's last row; those not reached left out."""
    values = asdict(metrics)
    return {name: float(values[name]) for name in FINAL_METRICS if values[name] is not None}


def first_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
