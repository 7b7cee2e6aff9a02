"""A trial left RUNNING without a single heartbeat (its worker was killed between ``ask()`` and its first
beat) is failed as stale after the grace period like any other: a resumed study never waits for ever.
The first study runs in-process (conftest's ``train_cli``); the rerun, which would hang, in a process with a
timeout."""
import optuna
import pytest

from conftest import TINY, run_train

pytestmark = pytest.mark.slow

STUDY = ["-m", "hydra/sweeper=optuna", "hydra.sweeper.study_name=stale", "hydra.sweeper.heartbeat_interval=1",
         "hydra.sweeper.grace_period=2", "lr=interval(0.05, 0.5)", *TINY, "epochs=1"]


def test_a_trial_asked_but_never_beating_goes_stale_and_the_rerun_finishes(tmp_path, train_cli):
    first = train_cli(*STUDY, "hydra.sweeper.n_trials=1", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    storage = f"sqlite:///{tmp_path / 'outputs' / 'sweeps' / 'stale' / 'optuna.db'}"
    stranded = optuna.load_study(study_name="stale", storage=storage).ask()  # RUNNING, no heartbeat row

    # before the fix this waited silently until killed; the timeout fails the test instead of hanging it
    rerun = run_train(*STUDY, "hydra.sweeper.n_trials=2", cwd=tmp_path, timeout=120)
    output = rerun.stdout + rerun.stderr
    assert rerun.returncode == 0, output[-3000:]
    assert f"trial {stranded.number}: its worker stopped sending heartbeats" in output
    trials = optuna.load_study(study_name="stale", storage=storage).trials
    assert [t.state.name for t in trials] == ["COMPLETE", "FAIL", "COMPLETE"]
    assert "fail_reason" not in trials[1].user_attrs  # interrupted: it does not count toward n_trials
