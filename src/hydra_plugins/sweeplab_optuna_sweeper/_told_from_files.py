"""Trials whose job finished but whose worker was killed before it told the trial how: a fused batch tells
its members once the last of them has ended, a single trial between its job's end and ``tell``. A
resumed study tells them from their job's files, as their worker would have, instead of failing them
as interrupted and running their params again: no finished job reruns, and the study's counts stay
those of its job dirs (``sweeplab report``)."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Optional

import optuna
from omegaconf import OmegaConf
from optuna.trial import FrozenTrial, TrialState

from sweeplab.job.trial import FAIL_REASON, JOB_DIR
from sweeplab.jobfiles import METRICS, Metrics, objective_value, read_metrics

from ._fused_trials import tell_outside_optimize
from ._optuna_private import stale_trial_ids

log = logging.getLogger(__name__)


def tell_finished_jobs(study: optuna.Study, storage: optuna.storages.BaseStorage) -> None:
    """Tell each stale RUNNING trial whose job's metrics.json says it ended how it ended. Called before
    ``fail_stale_trials``, which fails the others (their jobs were killed)."""
    for trial_id in stale_trial_ids(study):
        trial = storage.get_trial(trial_id)
        outcome = outcome_on_file(trial)
        if outcome is None:
            continue
        live = optuna.Trial(study, trial_id)
        reason = outcome.pop("reason", None)
        if reason and FAIL_REASON not in trial.user_attrs:  # the sweeper had no time to record it
            live.set_user_attr(FAIL_REASON, reason)
        tell_outside_optimize(study, live, skip_if_finished=True, **outcome)
        log.warning("trial %d: its worker stopped before telling how its job ended; told from %s",
                    trial.number, Path(trial.user_attrs[JOB_DIR]) / METRICS)


def outcome_on_file(trial: FrozenTrial) -> Optional[dict[str, Any]]:
    """``study.tell``'s arguments for a finished job's trial (with the ``reason`` of a failed one), from
    its metrics.json and its objective in ``.hydra/config.yaml``; None when its job did not finish."""
    job_dir = trial.user_attrs.get(JOB_DIR)
    if job_dir is None or not (Path(job_dir) / METRICS).is_file():
        return None
    try:
        metrics = Metrics(**read_metrics(Path(job_dir)))
        if metrics.status == "ok":
            value = objective_value(metrics, OmegaConf.load(Path(job_dir) / ".hydra" / "config.yaml").objective)
            return {"values": list(value) if isinstance(value, tuple) else value}
    except (OSError, ValueError, TypeError, AttributeError):  # damaged files: the job counts as interrupted
        return None
    if metrics.status == "pruned":
        return {"state": TrialState.PRUNED}
    if metrics.status in ("failed", "diverged"):
        return {"state": TrialState.FAIL, "reason": f"{metrics.status}: {metrics.reason}"}
    return None
