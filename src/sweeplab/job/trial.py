"""The Optuna trial the running job belongs to, rebuilt from the study's storage.

The Optuna sweeper passes each job its study through the environment of its own process, which
forked workers, launcher processes and SLURM jobs inherit (:func:`study_environment`): the storage
URL, the study name and the pruner, so that a storage password never reaches a command line, a
launch line or a job's ``.hydra/`` files. The trial is the job's number: the sweeper launches trial
N's job as job N. :func:`current` opens that storage in the job's process, wherever the
launcher ran it (the sweeper's process, a joblib worker, a SLURM node), and returns the trial as an
``optuna.Trial``: Optuna's distributed mode, where every process reaches a study through its storage.
The task then reports validation accuracy to it every epoch and stops when the pruner says so
(:class:`sweeplab.training.callbacks.OptunaPruning`), and tells the sweeper how it ended (:func:`finish`).
Jobs that share the sweeper's process and environment (fused members) get theirs from :func:`running`.
"""
from __future__ import annotations

import functools
import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

if TYPE_CHECKING:
    import optuna

# the environment a job gets from the Optuna sweeper (`sweeplab report` reads SWEEPLAB_STORAGE too)
STORAGE, STUDY, PRUNER = "SWEEPLAB_STORAGE", "SWEEPLAB_STUDY", "SWEEPLAB_PRUNER"
# trial user attrs this module sets (the sweeper reads them)
JOB_DIR = "job_dir"  # where the trial's job writes its files
FAIL_REASON = "fail_reason"  # why the job failed: the trial is finished and counts toward n_trials


@contextmanager
def study_environment(storage: str, study_name: str, pruner: dict | None) -> Iterator[None]:
    """Set what :func:`current` needs in this process's environment while the sweep runs (and
    restore it after): ``storage`` is a URL or a storage's ``_target_`` node as JSON, ``pruner`` a
    ``_target_`` node (None: no pruning)."""
    values = {STORAGE: storage, STUDY: study_name, PRUNER: json.dumps(pruner)}
    previous = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def connect(storage: str) -> optuna.storages.BaseStorage:
    """The study's storage, opened in the job. A URL opens an RDB storage without re-creating its
    tables or re-checking its schema (the sweeper did both before it launched the job); SQLite
    waits up to a minute for another process's lock, a server's connections close after each use
    (a long-lived worker runs many jobs, a server allows few)."""
    import optuna
    from hydra.utils import instantiate
    from sqlalchemy.pool import NullPool

    if storage.startswith("{"):
        return instantiate(json.loads(storage))
    engine_kwargs = {"connect_args": {"timeout": 60}} if storage.startswith("sqlite") else {"poolclass": NullPool}
    return optuna.storages.RDBStorage(storage, engine_kwargs=engine_kwargs, skip_compatibility_check=True,
                                      skip_table_creation=True)


_running: optuna.Trial | None = None  # a trial whose job runs in the sweeper's own process (fused members)
_pruned_here: dict[int, str] = {}  # such trials that their job stopped: number -> reason


@contextmanager
def running(trial: optuna.Trial) -> Iterator[None]:
    """Make ``trial`` the current one for jobs run here, in the sweeper's process, where several
    jobs share one environment (the fused launcher trains several trials' jobs as one model)."""
    global _running
    _running, previous = trial, _running
    try:
        yield
    finally:
        _running = previous


def pruned_here(number: int) -> str | None:
    """Whether trial ``number``'s in-process job was pruned (once; with its reason), else None."""
    return _pruned_here.pop(number, None)


def current() -> optuna.Trial | None:
    """The trial of the job running here, or None outside an Optuna study."""
    if _running is not None:
        trial = _running
    elif STUDY not in os.environ:
        return None
    else:
        trial = _from_environment()
    return trial


def record_job_dir(job_dir: Path) -> None:
    """Record where the current trial's job writes (nothing outside an Optuna study), once, as soon as
    its metrics.json says ``running``: a trial whose worker dies from then on can be found by its files."""
    if _running is not None:
        _running.set_user_attr(JOB_DIR, str(job_dir.absolute()))
    elif STUDY in os.environ:
        storage, trial_id = _locate()
        storage.set_trial_user_attr(trial_id, JOB_DIR, str(job_dir.absolute()))


def finish(status: str, reason: str | None) -> None:
    """Tell the job's trial, if any, how the job ended: raise ``TrialPruned`` when it was pruned,
    record why when it finished otherwise not ok (diverged)."""
    if status == "ok" or (_running is None and STUDY not in os.environ):
        return
    if _running is not None:  # the other jobs in this process go on: the sweeper asks pruned_here()
        if status == "pruned":
            _pruned_here[_running.number] = reason or "pruned"
        else:
            _running.set_user_attr(FAIL_REASON, f"{status}: {reason}")
        return
    import optuna

    if status == "pruned":
        raise optuna.TrialPruned(reason)
    storage, trial_id = _locate()
    storage.set_trial_user_attr(trial_id, FAIL_REASON, f"{status}: {reason}")


def _from_environment() -> optuna.Trial:
    import optuna
    from hydra.utils import instantiate

    storage, trial_id = _locate()
    pruner = json.loads(os.environ[PRUNER])
    pruner = optuna.pruners.NopPruner() if pruner is None else instantiate(pruner)
    if isinstance(pruner, functools.partial):  # a _partial_ node
        pruner = pruner()
    # the sampler is not used here (the sweeper drew the params); a random one asks nothing of the storage
    study = optuna.load_study(study_name=os.environ[STUDY], storage=storage,
                              sampler=optuna.samplers.RandomSampler(), pruner=pruner)
    return optuna.Trial(study, trial_id)


def _locate() -> tuple[optuna.storages.BaseStorage, int]:
    """The storage named by the environment, and the id of the job's trial in it: the trial's number
    is the job's (``hydra.job.num``)."""
    from hydra.core.hydra_config import HydraConfig

    storage = connect(os.environ[STORAGE])
    study_id = storage.get_study_id_from_name(os.environ[STUDY])
    return storage, storage.get_trial_id_from_study_id_trial_number(study_id, HydraConfig.get().job.num)
