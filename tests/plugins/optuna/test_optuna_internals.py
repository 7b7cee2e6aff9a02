"""The Optuna sweeper's parts in-process: per-trial seeding, the asking lock, a job's outcome, the
job's side of the trial (sweeplab.job.trial), retries of interrupted trials."""
import fcntl
import json
import os
import subprocess
import sys

import optuna
import pytest
from hydra.conf import HydraConf
from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, JobStatus
from omegaconf import OmegaConf
from optuna.trial import TrialState

import sweeplab.job.trial
from hydra_plugins.sweeplab_optuna_sweeper._impl import OptunaSweeperImpl
from hydra_plugins.sweeplab_optuna_sweeper._sampler import SeededPerTrial
from hydra_plugins.sweeplab_optuna_sweeper._study import Tally, retry_next_interrupted
from hydra_plugins.sweeplab_optuna_sweeper._turn import AskingTurn

SPACE = {"x": optuna.distributions.FloatDistribution(0, 1), "k": optuna.distributions.IntDistribution(0, 10**6)}


def draw(study, n):
    for _ in range(n):
        trial = study.ask(SPACE)
        study.tell(trial, 0.0)
    return [t.params for t in study.trials]


def seeded_random(seed=0):
    return SeededPerTrial(lambda s: optuna.samplers.RandomSampler(seed=s), seed)


def test_a_seeded_study_continued_by_another_process_never_redraws(tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    first = optuna.create_study(study_name="s", storage=url, sampler=seeded_random())
    earlier = draw(first, 3)
    # a resumed run or a second machine: a new sampler with the same seed on the same storage
    resumed = optuna.load_study(study_name="s", storage=url, sampler=seeded_random())
    later = draw(resumed, 3)[3:]
    assert all(params not in earlier for params in later)
    # what stays reproducible: a fresh study with the same seed draws the same params per trial number
    again = optuna.create_study(sampler=seeded_random())
    assert draw(again, 6) == earlier + later


HOLD = """
import sys, time
from pathlib import Path
from hydra_plugins.sweeplab_optuna_sweeper._turn import AskingTurn
turn = AskingTurn(Path(sys.argv[1]))
turn.take()
print("holding", flush=True)
time.sleep(600)
"""


def test_the_asking_lock_is_freed_when_its_holder_is_killed(tmp_path):
    path = tmp_path / ".optuna.lock"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "holding\n"
        with open(path, "a") as other:
            with pytest.raises(BlockingIOError):
                fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
            holder.kill()  # kill -9: no Python code of the holder runs
            holder.wait()
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the kernel released it
    finally:
        holder.kill()


def test_two_turns_in_one_process_exclude_each_other(tmp_path):
    """Worker threads each open the lock file, so their turns exclude each other too."""
    first, second = AskingTurn(tmp_path / "lock"), AskingTurn(tmp_path / "lock")
    first.take()
    with pytest.raises(BlockingIOError):
        fcntl.flock(second.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    first.give_back()
    fcntl.flock(second.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    first.close()
    second.close()


# ------------------------------------------------------------------ a job's outcome


@pytest.fixture
def sweeper():
    return OptunaSweeperImpl(
        sampler=OmegaConf.create({"_target_": "optuna.samplers.RandomSampler", "seed": None}),
        pruner=OmegaConf.create({"_target_": "optuna.pruners.NopPruner"}), direction="maximize",
        study_name="s", storage=None, n_trials=3, n_jobs=None, n_workers=1, max_failure_rate=0.5, params=None,
        search_space=None, custom_search_space=None, default_params=None, heartbeat_interval=10, grace_period=30,
    )


def job(status, value, output_dir="/somewhere/trial_7"):
    hydra_cfg = OmegaConf.create({"hydra": {"runtime": {"output_dir": output_dir}}})
    return JobReturn(status=status, _return_value=value, hydra_cfg=hydra_cfg)


def outcome(sweeper, returned):
    study = optuna.create_study()
    trial = study.ask()
    try:
        value = sweeper._outcome(trial, returned)
    except optuna.TrialPruned:
        study.tell(trial, state=TrialState.PRUNED)
    else:
        study.tell(trial, value)
    return study.trials[0]


def test_the_outcome_and_job_dir_come_from_the_job_return(sweeper):
    done = outcome(sweeper, job(JobStatus.COMPLETED, 0.75))
    assert done.state == TrialState.COMPLETE and done.value == 0.75
    assert done.user_attrs["job_dir"] == "/somewhere/trial_7"
    pruned = outcome(sweeper, job(JobStatus.FAILED, optuna.TrialPruned("pruned after epoch 2")))
    assert pruned.state == TrialState.PRUNED and pruned.user_attrs["job_dir"] == "/somewhere/trial_7"
    failed = outcome(sweeper, job(JobStatus.FAILED, ValueError("bad")))
    assert failed.state == TrialState.FAIL and failed.user_attrs["fail_reason"] == "ValueError: bad"


def test_a_job_without_a_status_is_a_failure_never_ok(sweeper):
    trial = outcome(sweeper, JobReturn())
    assert trial.state == TrialState.FAIL
    assert trial.user_attrs["fail_reason"] == "the launcher returned no outcome for the job (status UNKNOWN)"
    assert Tally.of([trial]).failed == 1


# ------------------------------------------------------------------ the job's side


@pytest.fixture
def job_number():
    """Set the running job's number (``hydra.job.num``), as Hydra does around a job."""
    previous = HydraConfig.instance().cfg

    def set_number(number):
        cfg = OmegaConf.create({"hydra": OmegaConf.structured(HydraConf)})
        cfg.hydra.job.num = number
        HydraConfig.instance().set_config(cfg)

    yield set_number
    HydraConfig.instance().cfg = previous


def test_a_job_reaches_its_trial_through_the_storage(tmp_path, job_number):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.create_study(study_name="s", storage=url, direction="maximize")
    for value in (0.9, 0.8):  # two finished trials the median pruner compares against
        trial = study.ask()
        trial.report(value, 1)
        study.tell(trial, value)
    asked = study.ask()
    job_number(asked.number)  # the sweeper launches trial N's job as job N
    pruner = {"_target_": "optuna.pruners.MedianPruner", "n_startup_trials": 1, "n_warmup_steps": 0}

    with sweeplab.job.trial.study_environment(url, "s", pruner):
        assert json.loads(os.environ["SWEEPLAB_PRUNER"]) == pruner
        sweeplab.job.trial.record_job_dir(tmp_path / "job")
        trial = sweeplab.job.trial.current()
        trial.report(0.1, 1)
        assert trial.should_prune()
        with pytest.raises(optuna.TrialPruned, match="pruned after epoch 1"):
            sweeplab.job.trial.finish("pruned", "pruned after epoch 1")
        sweeplab.job.trial.finish("diverged", "train loss became nan")
    assert "SWEEPLAB_STUDY" not in os.environ  # restored once the sweep ends
    stored = optuna.load_study(study_name="s", storage=url).trials[asked.number]
    assert stored.intermediate_values == {1: 0.1}
    assert stored.user_attrs == {"job_dir": str(tmp_path / "job"), "fail_reason": "diverged: train loss became nan"}


def test_outside_a_study_there_is_no_trial(tmp_path, monkeypatch):
    monkeypatch.delenv("SWEEPLAB_STUDY", raising=False)
    assert sweeplab.job.trial.current() is None
    sweeplab.job.trial.record_job_dir(tmp_path)  # no study: nothing to record, no exception
    sweeplab.job.trial.finish("pruned", "no study: nothing to tell")  # no exception


# ------------------------------------------------------------------ retries


def test_an_interrupted_trial_is_retried_once_with_its_params_and_grid_point():
    distribution = {"x": optuna.distributions.CategoricalDistribution([1, 2, 3])}
    study = optuna.create_study(sampler=optuna.samplers.GridSampler({"x": [1, 2, 3]}, seed=0))
    failed = study.ask(distribution)  # the job failed: finished, counts, never retried
    failed.set_user_attr("fail_reason", "ValueError: bad")
    study.tell(failed, state=TrialState.FAIL)
    stopped = study.ask(distribution)
    study.tell(stopped, state=TrialState.FAIL)  # as Ctrl-C or a stale heartbeat leaves it: no fail_reason
    retry_next_interrupted(study)
    retry_next_interrupted(study)  # already queued: nothing more
    (waiting,) = study.get_trials(states=(TrialState.WAITING,))
    assert waiting.params == study.trials[1].params
    assert waiting.system_attrs["grid_id"] == study.trials[1].system_attrs["grid_id"]
    tally = Tally.of(study.trials)
    assert (tally.failed, tally.interrupted, tally.running) == (1, 1, 1)
