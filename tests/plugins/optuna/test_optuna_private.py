"""The private Optuna names sweeplab uses (``_optuna_private``) still do what it relies on: these fail
when Optuna changes them."""
import time

import optuna
from optuna.trial import TrialState

from hydra_plugins.sweeplab_optuna_sweeper._optuna_private import heartbeat, record_heartbeat, stale_trial_ids
from hydra_plugins.sweeplab_optuna_sweeper._study import experimental_allowed

WAIT = 2.5  # beyond the grace period of 1 s; SQLite's clock counts whole seconds


def storage_with_heartbeats(tmp_path):
    with experimental_allowed():
        return optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'study.db'}", heartbeat_interval=1, grace_period=1)


def stale_check(study):
    with experimental_allowed():
        optuna.storages.fail_stale_trials(study)
    return [t.state for t in study.trials]


def test_a_trial_without_a_heartbeat_is_never_stale_until_one_is_recorded(tmp_path):
    storage = storage_with_heartbeats(tmp_path)
    study = optuna.create_study(study_name="s", storage=storage)
    silent = study.ask()  # as a worker killed right after ask() leaves it
    time.sleep(WAIT)
    assert stale_check(study) == [TrialState.RUNNING]  # why the sweeper beats once for it
    trial_id = storage.get_trial_id_from_study_id_trial_number(storage.get_study_id_from_name("s"), silent.number)
    assert record_heartbeat(storage, trial_id)
    time.sleep(WAIT)
    assert stale_check(study) == [TrialState.FAIL]


def test_stale_trial_ids_are_the_trials_fail_stale_trials_fails(tmp_path):
    storage = storage_with_heartbeats(tmp_path)
    study = optuna.create_study(study_name="s", storage=storage)
    trial = study.ask()
    assert record_heartbeat(storage, trial._trial_id)
    assert stale_trial_ids(study) == []
    time.sleep(WAIT)
    assert stale_trial_ids(study) == [trial._trial_id]
    assert stale_check(study) == [TrialState.FAIL]


def test_the_heartbeat_context_keeps_a_trial_alive_and_stops_on_exit(tmp_path):
    study = optuna.create_study(study_name="s", storage=storage_with_heartbeats(tmp_path))
    trial = study.ask()
    with heartbeat(study, trial):
        time.sleep(WAIT)
        assert stale_check(study) == [TrialState.RUNNING]  # it beats while inside
    time.sleep(WAIT)
    assert stale_check(study) == [TrialState.FAIL]  # and stopped beating on exit


def test_storages_without_heartbeats_are_left_alone(tmp_path):
    study = optuna.create_study(study_name="s", storage=f"sqlite:///{tmp_path / 'plain.db'}")
    trial = study.ask()
    assert not record_heartbeat(study._storage, 0)
    assert stale_trial_ids(study) == []
    with heartbeat(study, trial):  # a no-op, not an error
        pass
