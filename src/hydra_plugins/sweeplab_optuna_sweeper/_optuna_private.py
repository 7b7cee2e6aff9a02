"""Every private Optuna name sweeplab uses, in one place; tests/plugins/optuna/test_optuna_private.py fails when
Optuna changes one of them (optuna is bounded to its tested major versions for the same reason).

Why they are needed: a trial's heartbeat (how a killed worker's trial is found and failed) is
run by ``study.optimize`` around its objective, but a fused worker asks K trials and runs their
jobs as one, outside ``optimize``, so it runs Optuna's heartbeat thread itself; and a trial left
RUNNING without any heartbeat (its worker was killed between ``ask()`` and the first beat) is
invisible to ``fail_stale_trials``, so the sweeper records one heartbeat for it, after which it
goes stale like any other; and a stale trial whose job had finished (its worker was killed before it
told the trial) is told from its job's files before ``fail_stale_trials`` would fail it. Optuna exposes
neither the heartbeat thread, ``record_heartbeat`` nor the stale trials publicly
(``optuna.storages._heartbeat``).
"""
from __future__ import annotations

from contextlib import AbstractContextManager

import optuna
from optuna.storages._heartbeat import BaseHeartbeat, get_heartbeat_thread, is_heartbeat_enabled


def heartbeat(study: optuna.Study, trial: optuna.Trial) -> AbstractContextManager[None]:
    """Beat ``trial``'s heartbeat while inside (nothing where the storage has no heartbeats), as
    ``study.optimize`` does around a trial."""
    return get_heartbeat_thread(trial._trial_id, study._storage)


def record_heartbeat(storage: optuna.storages.BaseStorage, trial_id: int) -> bool:
    """Record one heartbeat of trial ``trial_id``; False where the storage keeps none."""
    if not is_heartbeat_enabled(storage):
        return False
    assert isinstance(storage, BaseHeartbeat)
    storage.record_heartbeat(trial_id)
    return True


def stale_trial_ids(study: optuna.Study) -> list[int]:
    """The ids of ``study``'s RUNNING trials whose heartbeat is older than the grace period: those
    ``fail_stale_trials`` fails (none where the storage keeps no heartbeats)."""
    storage = study._storage
    if not is_heartbeat_enabled(storage):
        return []
    assert isinstance(storage, BaseHeartbeat)
    return storage._get_stale_trial_ids(study._study_id)
