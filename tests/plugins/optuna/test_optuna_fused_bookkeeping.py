"""What an Optuna study with ``hydra.sweeper.fuse=K`` costs beside its training stays the same per trial as the
study grows: a fused batch reads the study's trials a fixed number of times whatever its size, the results
files are rewritten as the study grows rather than after every trial (each rewrite reads every trial), and
a SQLite storage commits to a write-ahead log while the trials run, back to its rollback journal at the end.
In-process, on tiny data."""
import contextlib
import sqlite3
from pathlib import Path

import optuna
import yaml
from hydra.core.hydra_config import HydraConfig

import sweeplab.job.task
from conftest import TINY, multirun, trial_states
from hydra_plugins.sweeplab_optuna_sweeper._study import results_due

STUDY = ["hydra/sweeper=optuna", "hydra.sweeper.study_name=fused", "hydra/sweeper/sampler=random",
         "hydra.sweeper.sampler.seed=0", "hydra/sweeper/pruner=nop", "lr=interval(0.01, 0.1)", *TINY, "epochs=1"]


def study_reads(monkeypatch, sweep_dir: Path, trials: int) -> int:
    """How many times the sweeper reads the study's trials over one fused batch of ``trials`` trials."""
    reads = 0
    get_trials = optuna.Study.get_trials

    def counted(self, *args, **kwargs):
        nonlocal reads
        reads += 1
        return get_trials(self, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(optuna.Study, "get_trials", counted)
        multirun(sweeplab.job.task.main, sweep_dir, *STUDY, f"hydra.sweeper.n_trials={trials}",
                 f"hydra.sweeper.fuse={trials}")
    study = optuna.load_study(study_name="fused", storage=f"sqlite:///{sweep_dir / 'optuna.db'}")
    assert trial_states(study) == ["COMPLETE"] * trials
    return reads


def test_a_fused_batch_reads_the_studys_trials_as_often_whatever_its_size(monkeypatch, tmp_path):
    assert study_reads(monkeypatch, tmp_path / "two", 2) == study_reads(monkeypatch, tmp_path / "six", 6)


def test_results_files_are_rewritten_after_the_first_trials_then_as_the_study_grows_by_an_eighth():
    def rewrites(trials: int) -> tuple[int, int]:
        """Rewrites over a study told one trial at a time, and the most trials the files ever lagged."""
        written, count, lag = 0, 0, 0
        for finished in range(1, trials + 1):
            if results_due(finished, written):
                written, count = finished, count + 1
            lag = max(lag, (finished - written) / finished)
        return count, lag

    assert rewrites(8) == (8, 0)  # a small study: after every trial
    count_100, count_1000, count_10000 = (rewrites(n)[0] for n in (100, 1000, 10_000))
    # each rewrite reads every trial: as many rewrites per tenfold growth keeps their cost per trial constant
    assert count_10000 - count_1000 <= count_1000 - count_100 + 1
    assert rewrites(10_000)[1] <= 1 / 8  # the files never miss more than an eighth of the finished trials


def mode_of(database: Path) -> str:
    with contextlib.closing(sqlite3.connect(database)) as connection:
        return connection.execute("PRAGMA journal_mode").fetchone()[0]


def test_sqlite_storage_is_in_wal_mode_while_fused_trials_run_and_back_to_its_rollback_journal_after(tmp_path):
    modes = []

    def journal_mode(cfg):
        database = Path(HydraConfig.get().sweep.dir) / "optuna.db"
        modes.append(mode_of(database))
        return 0.5

    sweep_dir = tmp_path / "sweep"
    multirun(journal_mode, sweep_dir, *STUDY, "hydra.sweeper.n_trials=4", "hydra.sweeper.fuse=2")
    assert modes == ["wal"] * 4
    assert mode_of(sweep_dir / "optuna.db") == "delete"
    assert not (sweep_dir / "optuna.db-wal").exists()
    assert yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())["finished"] == 4


def test_each_fused_trial_records_its_job_dir_once(monkeypatch, tmp_path):
    written = []
    set_user_attr = optuna.Trial.set_user_attr

    def recorded(self, key, value):
        written.append((self.number, key))
        set_user_attr(self, key, value)

    monkeypatch.setattr(optuna.Trial, "set_user_attr", recorded)
    multirun(sweeplab.job.task.main, tmp_path, *STUDY, "hydra.sweeper.n_trials=2", "hydra.sweeper.fuse=2")
    assert sorted(number for number, key in written if key == "job_dir") == [0, 1]
