"""A study of train.py without a name is a fresh study named by its start time, in a dir of that name, so
a second study with another search space never collides with the first; its last line says how to resume
it (by its dir), and a rerun into that dir finds the same study. In-process (conftest's ``train_cli``)."""
import re
import time

import optuna
import pytest

from conftest import TINY

pytestmark = pytest.mark.slow

STUDY = ["-m", "hydra/sweeper=optuna", "hydra/sweeper/sampler=random", *TINY]


def next_second() -> None:
    """Wait for the clock's next second: an unnamed study's name is its start time, to the second."""
    time.sleep(1 - time.time() % 1)


def test_unnamed_studies_get_a_dir_each_and_resume_by_it(tmp_path, train_cli):
    first = train_cli(*STUDY, "hydra.sweeper.n_trials=1", "lr=interval(0.01, 0.1)", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    next_second()
    second = train_cli(*STUDY, "hydra.sweeper.n_trials=1", "model.width=choice(8,16)", cwd=tmp_path)
    assert second.returncode == 0, second.stderr[-2000:]  # another search space: no "another search space"
    dirs = sorted((tmp_path / "outputs" / "sweeps").iterdir())
    assert len(dirs) == 2 and all(re.fullmatch(r"\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d", d.name) for d in dirs)

    hint = re.search(r"to resume or add trials \(a larger n_trials\): rerun the same command with "
                     r"(hydra\.sweep\.dir=\S+)", first.stdout + first.stderr)
    assert hint is not None and hint.group(1) == f"hydra.sweep.dir={dirs[0]}"
    more = train_cli(*STUDY, "hydra.sweeper.n_trials=2", "lr=interval(0.01, 0.1)", hint.group(1), cwd=tmp_path)
    assert more.returncode == 0, more.stderr[-2000:]
    assert "resuming: 1 finished" in more.stdout + more.stderr
    study = optuna.load_study(study_name=dirs[0].name, storage=f"sqlite:///{dirs[0] / 'optuna.db'}")
    assert len(study.trials) == 2 and sorted((tmp_path / "outputs" / "sweeps").iterdir()) == dirs


def test_a_named_study_resumes_by_rerunning_the_same_command(tmp_path, train_cli):
    command = [*STUDY, "hydra.sweeper.study_name=lrs", "hydra.sweeper.n_trials=1", "lr=interval(0.01, 0.1)"]
    first = train_cli(*command, cwd=tmp_path)
    assert "to resume or add trials (a larger n_trials): rerun the same command\n" in first.stdout + first.stderr
    train_cli(*command[:-2], "hydra.sweeper.n_trials=2", "lr=interval(0.01, 0.1)", cwd=tmp_path)
    study = optuna.load_study(study_name="lrs", storage=f"sqlite:///{tmp_path / 'outputs/sweeps/lrs/optuna.db'}")
    assert len(study.trials) == 2
