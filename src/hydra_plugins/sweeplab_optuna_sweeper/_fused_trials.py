"""``hydra.sweeper.fuse=K``: a worker asks for up to K trials at once and hands their jobs to the fused
launcher, which trains those whose sampled values fuse as one stacked model (``hydra/launcher=fused``).

Each job runs with its own trial current (``sweeplab.trial.running``: the members share one process and
environment, so their jobs get no ``SWEEPLAB_*`` variables): it reports its per-epoch value
to that trial, and a member the pruner stops leaves the stack while the others go on. Each trial is
then told its own outcome, exactly as a one-job trial is.
"""
from __future__ import annotations

import contextlib
import functools
from typing import TYPE_CHECKING, Any

import optuna
from optuna.storages._heartbeat import get_heartbeat_thread  # what study.optimize runs around a trial
from optuna.trial import TrialState

import sweeplab.trial
from hydra_plugins.sweeplab_fused_launcher.fused_launcher import FusedLauncher
from hydra_plugins.sweeplab_sequential_launcher.sequential_launcher import SequentialLauncher

from ._study import StudyError

if TYPE_CHECKING:
    from ._impl import AskingTurn, OptunaSweeperImpl


def fused_launcher(sweeper: OptunaSweeperImpl) -> FusedLauncher:
    """The configured launcher if it is the fused one; the fused launcher with its defaults in place
    of the basic launcher (the default: sweeplab's sequential launcher, or Hydra's); any other cannot fuse."""
    launcher = sweeper.launcher
    if isinstance(launcher, FusedLauncher):
        return launcher
    if not isinstance(launcher, SequentialLauncher) and type(launcher).__name__ != "BasicLauncher":
        raise StudyError(f"hydra.sweeper.fuse={sweeper.fuse}: fused trials run on hydra/launcher=fused (or in "
                         f"place of the default basic launcher), not on {type(launcher).__name__}")
    if getattr(sweeper, "fused_launcher", None) is None:  # one for the study: its batches reuse its compositions
        sweeper.fused_launcher = FusedLauncher()
        sweeper.fused_launcher.setup(hydra_context=launcher.hydra_context, task_function=launcher.task_function,
                                     config=launcher.config)
    return sweeper.fused_launcher


def run_trials(sweeper: OptunaSweeperImpl, study: optuna.Study, count: int, turn: AskingTurn) -> None:
    """Ask for ``count`` trials, run their jobs together, tell each trial how its job ended."""
    trials = [study.ask() for _ in range(count)]
    turn.give_back()  # asked: let the next local worker count
    launcher = fused_launcher(sweeper)
    jobs = []
    with contextlib.ExitStack() as heartbeats:
        for trial in trials:
            heartbeats.enter_context(get_heartbeat_thread(trial._trial_id, study._storage))
        # job numbers are trial numbers: launch each run of consecutive numbers together
        for run in consecutive_runs(trials):
            overrides = [sweeper._job_overrides(trial) for trial in run]
            scopes = [functools.partial(sweeplab.trial.running, trial) for trial in run]
            jobs += launcher.launch_in_scopes(overrides, run[0].number, scopes)
    for trial, job in zip(trials, jobs, strict=True):
        tell(sweeper, study, trial, job, write=trial is trials[-1])


def consecutive_runs(trials: list[optuna.Trial]) -> list[list[optuna.Trial]]:
    runs: list[list[optuna.Trial]] = []
    for trial in trials:
        if runs and runs[-1][-1].number + 1 == trial.number:
            runs[-1].append(trial)
        else:
            runs.append([trial])
    return runs


def tell(sweeper: OptunaSweeperImpl, study: optuna.Study, trial: optuna.Trial, job: Any, write: bool) -> None:
    """Record the job's outcome as ``study.optimize`` would: value, PRUNED, or FAIL (a nan value); ``write``:
    rewrite the results files (once per batch: each rewrite reads every trial of the study)."""
    try:
        value = sweeper._outcome(trial, job)
    except optuna.TrialPruned:
        frozen = study.tell(trial, state=TrialState.PRUNED)
    else:
        frozen = study.tell(trial, value)
    sweeper._after_trial(study, frozen, write)
