"""Studies that can always finish: a group choice that does not exist is refused before the first trial;
a trial whose params make no config fails with its reason and is not retried as interrupted."""
import optuna
import pytest

from conftest import multirun
from hydra_plugins.sweeplab_optuna_sweeper._search_space import SearchSpaceError

STUDY = ["hydra/sweeper=optuna", "hydra/sweeper/sampler=grid", "hydra.sweeper.max_failure_rate=1"]


def no_training(cfg):
    return float(cfg.epochs)


def test_a_group_choice_that_does_not_exist_is_refused_before_any_trial(tmp_path):
    with pytest.raises(SearchSpaceError) as error:
        multirun(no_training, tmp_path / "sweep", *STUDY, "optimizer=choice(sgd,nosuchopt)")
    message = str(error.value)
    assert "optimizer: no option 'nosuchopt' in config group optimizer; its options: " in message
    assert "adam" in message.split("its options: ")[1] and "\n" not in message
    assert not (tmp_path / "sweep" / "optuna.db").exists()  # refused before the study was opened


def test_a_trial_that_cannot_compose_fails_with_its_reason_and_is_not_retried(tmp_path):
    sweep_dir = tmp_path / "sweep"
    for _ in range(2):  # the rerun finds the study finished: nothing is retried
        multirun(no_training, sweep_dir, *STUDY, "epochs=choice(1,abc)", "hydra.sweeper.n_trials=2")
        trials = optuna.load_study(study_name=None, storage=f"sqlite:///{sweep_dir / 'optuna.db'}").trials
        assert sorted(t.state.name for t in trials) == ["COMPLETE", "FAIL"]
    (failed,) = [t for t in trials if t.state.name == "FAIL"]
    assert failed.params == {"epochs": "abc"}
    assert failed.user_attrs["fail_reason"].startswith("cannot compose its config: ")
    assert "abc" in failed.user_attrs["fail_reason"]
