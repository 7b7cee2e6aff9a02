"""``hydra.sweeper.fuse=K``: a worker asks for up to K trials at once and hands their jobs to the fused
launcher, which trains those whose sampled values fuse as one stacked model (``hydra/launcher=fused``).

Each job runs with its own trial current (``sweeplab.job.trial.running``: the members share one process and
environment, so their jobs get no ``SWEEPLAB_*`` variables): it reports its per-epoch value
to that trial, and a member the pruner stops leaves the stack while the others go on. Each trial is
then told its own outcome, exactly as a one-job trial is.
"""
from __future__ import annotations

import contextlib
import functools
from typing import Any, Optional, Protocol

import optuna
from hydra.core.utils import JobReturn
from hydra.plugins.launcher import Launcher
from optuna.trial import FrozenTrial, TrialState

import sweeplab.job.trial
from hydra_plugins.sweeplab_fused_launcher.fused_launcher import FusedLauncher
from sweeplab.sweep.launchers import ScopedLauncher, is_basic_launcher

from ._optuna_private import heartbeat
from ._study import NO_ROOM, StudyError
from ._turn import AskingTurn


class TrialJobs(Protocol):
    """What the sweeper gives a fused worker: its launcher and the steps of one trial's job."""

    launcher: Launcher
    fuse: int
    fused_launcher: Optional[ScopedLauncher]  # one per study, so its batches reuse its compositions

    def _job_overrides(self, trial: optuna.Trial) -> list[str]: ...

    def _outcome(self, trial: optuna.Trial, job: JobReturn) -> Any: ...

    def _launch_failed(self, trial: optuna.Trial, exc: OSError) -> Any: ...

    def _after_trials(self, study: optuna.Study, told: list[FrozenTrial]) -> None: ...


def fused_launcher(sweeper: TrialJobs) -> ScopedLauncher:
    """The configured launcher if it enters each job's scope (the fused launcher); the fused launcher
    with its defaults in place of the basic launcher (the default); any other launcher cannot fuse."""
    launcher = sweeper.launcher
    if isinstance(launcher, ScopedLauncher):
        return launcher
    if not is_basic_launcher(launcher):
        raise StudyError(f"hydra.sweeper.fuse={sweeper.fuse}: fused trials run on hydra/launcher=fused (or in "
                         f"place of the default basic launcher), not on {type(launcher).__name__}")
    if sweeper.fused_launcher is None:
        sweeper.fused_launcher = FusedLauncher()
        sweeper.fused_launcher.setup(hydra_context=launcher.hydra_context, task_function=launcher.task_function,
                                     config=launcher.config)
    return sweeper.fused_launcher


def run_trials(sweeper: TrialJobs, study: optuna.Study, count: int, turn: AskingTurn) -> None:
    """Ask for ``count`` trials, run their jobs together, tell each trial how its job ended."""
    launcher = fused_launcher(sweeper)
    jobs: list[JobReturn | OSError] = []
    trials: list[optuna.Trial] = []
    with contextlib.ExitStack() as heartbeats:
        for _ in range(count):  # each trial beats from its ask on, as in study.optimize
            trials.append(study.ask())
            heartbeats.enter_context(heartbeat(study, trials[-1]))
        turn.give_back()  # asked: let the next local worker count
        # job numbers are trial numbers: launch each run of consecutive numbers together
        for run in consecutive_runs(trials):
            overrides = [sweeper._job_overrides(trial) for trial in run]
            scopes = [functools.partial(sweeplab.job.trial.running, trial) for trial in run]
            try:
                jobs += launcher.launch_in_scopes(overrides, run[0].number, scopes)
            except OSError as exc:  # no room for a job's files (a full disk): the run's trials failed
                if exc.errno not in NO_ROOM:
                    raise
                jobs += [exc] * len(run)
    sweeper._after_trials(study, [tell(sweeper, study, trial, job) for trial, job in zip(trials, jobs, strict=True)])


def consecutive_runs(trials: list[optuna.Trial]) -> list[list[optuna.Trial]]:
    runs: list[list[optuna.Trial]] = []
    for trial in trials:
        if runs and runs[-1][-1].number + 1 == trial.number:
            runs[-1].append(trial)
        else:
            runs.append([trial])
    return runs


def tell(sweeper: TrialJobs, study: optuna.Study, trial: optuna.Trial, job: JobReturn | OSError) -> FrozenTrial:
    """Record the job's outcome as ``study.optimize`` would: value, PRUNED, or FAIL (a nan value)."""
    try:
        value = sweeper._launch_failed(trial, job) if isinstance(job, OSError) else sweeper._outcome(trial, job)
    except optuna.TrialPruned:
        return tell_outside_optimize(study, trial, state=TrialState.PRUNED)
    return tell_outside_optimize(study, trial, values=value)


def tell_outside_optimize(study: optuna.Study, trial: optuna.Trial, **outcome: Any) -> FrozenTrial:
    """``study.tell``, here outside ``study.optimize``: GridSampler's ``after_trial`` calls
    ``study.stop()`` once its grid is done, which Optuna refuses outside ``optimize`` (a RuntimeError,
    raised after the outcome is stored). The sweeper's budget ends the study instead."""
    try:
        return study.tell(trial, **outcome)
    except RuntimeError:
        (stored,) = [t for t in study.get_trials(deepcopy=False) if t.number == trial.number]
        if not isinstance(study.sampler, optuna.samplers.GridSampler) or stored.state == TrialState.RUNNING:
            raise
        return stored
