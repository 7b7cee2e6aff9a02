"""A full disk in an Optuna study is a recorded failure. A trial whose job cannot write its files is told
FAIL with the file and the cause, and the study goes on and ends with its summary; a storage on a full
disk ends the sweep with one line that says "disk full", every finished trial kept. On a 1 MB tmpfs
(conftest's ``small_disk``); in-process, train.py's own command line (conftest's ``train_cli``) for the exit
line a user sees."""
from pathlib import Path

import optuna
import pytest
import yaml
from hydra.core.hydra_config import HydraConfig

import sweeplab.job.task
from conftest import TINY, fill_disk, multirun, trial_states
from hydra_plugins.sweeplab_optuna_sweeper._study import StudyError
from sweeplab.errors import ConfigError
from sweeplab.jobfiles import read_metrics

STUDY = ["hydra/sweeper=optuna", "hydra.sweeper.study_name=disk", "hydra/sweeper/sampler=random",
         "hydra.sweeper.sampler.seed=0", "lr=choice(0.1, 0.05)", *TINY]
FULL = "No space left on device"


def storage_in(folder: Path) -> str:
    return f"sqlite:///{folder / 'study.db'}"


def study_of(storage: str) -> optuna.Study:
    return optuna.load_study(study_name="disk", storage=storage)


@pytest.mark.parametrize("fuse", [1, 2])
def test_trials_whose_checkpoint_does_not_fit_fail_naming_the_file_and_the_study_ends_with_its_summary(
    small_disk, tmp_path, capfd, fuse,
):
    storage = storage_in(tmp_path)
    # 784-256-10: a checkpoint (last and best weights) is about 1.6 MB
    multirun(sweeplab.job.task.main, small_disk / "sweep", *STUDY, "checkpoint=true",
             f"hydra.sweeper.storage={storage}", "hydra.sweeper.n_trials=2", "hydra.sweeper.max_failure_rate=1",
             f"hydra.sweeper.fuse={fuse}")
    study = study_of(storage)
    assert trial_states(study) == ["FAIL", "FAIL"]
    for trial in study.trials:
        job_dir = Path(trial.user_attrs["job_dir"])
        reason = trial.user_attrs["fail_reason"]
        assert reason.startswith("FileError: cannot write ") and reason.endswith(f"checkpoint.pt: {FULL}")
        if fuse == 1:  # a fused group fails as one, on the first member's checkpoint
            assert reason == f"FileError: cannot write {job_dir / 'checkpoint.pt'}: {FULL}"
        assert read_metrics(job_dir)["status"] == "failed" and read_metrics(job_dir)["reason"] == reason
    results = yaml.safe_load((small_disk / "sweep" / "optimization_results.yaml").read_text())
    assert results["finished"] == 2 and results["states"]["failed"] == 2
    assert "study 'disk': 2 finished (0 complete, 0 pruned, 2 failed)" in capfd.readouterr().out


@pytest.mark.parametrize("fuse", [1, 2])
def test_jobs_that_cannot_start_on_a_full_disk_fail_and_the_study_ends_with_one_line(small_disk, tmp_path, fuse):
    storage = storage_in(tmp_path)

    def fills_the_disk_in_job_1(cfg):
        if HydraConfig.get().job.num == 1:
            fill_disk(small_disk)
        return 0.5

    with pytest.raises(StudyError) as info:  # the results file cannot be written either
        multirun(fills_the_disk_in_job_1, small_disk / "sweep", *STUDY, f"hydra.sweeper.storage={storage}",
                 "hydra.sweeper.n_trials=4", "hydra.sweeper.max_failure_rate=1", f"hydra.sweeper.fuse={fuse}")
    results = small_disk / "sweep" / "optimization_results.yaml"
    kept = f"(every trial is kept in {storage})"
    assert str(info.value) == f"the study is done, but cannot write {results}: {FULL} {kept}"
    study = study_of(storage)
    assert trial_states(study) == ["COMPLETE", "COMPLETE", "FAIL", "FAIL"]
    for trial in study.trials[2:]:  # Hydra could not write the job's .hydra/ files
        assert trial.user_attrs["fail_reason"].startswith("cannot write ")
        assert trial.user_attrs["fail_reason"].endswith(f": {FULL}")


def test_a_storage_that_fills_up_mid_study_ends_it_in_one_line_keeping_the_finished_trials(small_disk, tmp_path):
    storage = storage_in(small_disk)

    def fills_the_disk_in_job_2(cfg):
        if HydraConfig.get().job.num == 2:
            fill_disk(small_disk)
        return 0.5

    with pytest.raises(StudyError) as info:
        multirun(fills_the_disk_in_job_2, tmp_path / "sweep", *STUDY, f"hydra.sweeper.storage={storage}",
                 "hydra.sweeper.n_trials=4")
    assert str(info.value) == f"storage {storage}: cannot write to it: disk full (database or disk is full)"
    assert trial_states(study_of(storage))[:2] == ["COMPLETE", "COMPLETE"]


@pytest.mark.parametrize("n_workers", [1, 2])
def test_a_study_whose_storage_is_full_exits_with_one_line_and_resumes_once_there_is_room(
    small_disk, tmp_path, n_workers, train_cli,
):
    storage = storage_in(small_disk)
    study = [*STUDY, f"hydra.sweeper.storage={storage}", f"hydra.sweeper.n_workers={n_workers}"]
    multirun(lambda cfg: 0.5, tmp_path / "sweep", *study, "hydra.sweeper.n_trials=2")
    filler = fill_disk(small_disk)

    result = train_cli("-m", *study, "hydra.sweeper.n_trials=4", f"hydra.sweep.dir={tmp_path / 'rerun'}",
                       cwd=tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    said = [line for line in result.stderr.splitlines() if line and "HYDRA_FULL_ERROR" not in line]  # Hydra's hint
    assert said == [f"storage {storage}: cannot write to it: disk full (database or disk is full)"]
    assert trial_states(study_of(storage)) == ["COMPLETE", "COMPLETE"]

    filler.unlink()
    multirun(lambda cfg: 0.5, tmp_path / "sweep", *study, "hydra.sweeper.n_trials=4")
    assert trial_states(study_of(storage)) == ["COMPLETE"] * 4


def test_a_new_storage_on_a_full_disk_cannot_open_and_says_disk_full(small_disk, tmp_path):
    fill_disk(small_disk)
    storage = storage_in(small_disk)
    with pytest.raises(StudyError) as info:
        multirun(lambda cfg: 0.5, tmp_path / "sweep", *STUDY, f"hydra.sweeper.storage={storage}")
    assert str(info.value) == f"storage {storage}: cannot open it: disk full (database or disk is full)"


def test_a_study_into_a_sweep_dir_on_a_full_disk_is_refused_in_one_line(small_disk, tmp_path):
    fill_disk(small_disk)
    sweep_dir = small_disk / "sweep"
    with pytest.raises(ConfigError) as info:  # its lock file, before the storage in it
        multirun(lambda cfg: 0.5, sweep_dir, *STUDY)
    assert str(info.value) == (f"hydra.sweep.dir={sweep_dir}: cannot write {sweep_dir / '.sweeplab.lock'}: {FULL}; "
                               "make room, or give another hydra.sweep.dir")
