"""Which Optuna storage sweeplab report opens: a storage file inside the sweep dir, or the URL the user
gives (--storage, SWEEPLAB_STORAGE); never a server or a file elsewhere that a sweep dir names; and no
password in anything it prints or writes."""
from __future__ import annotations

import html
import shutil
from pathlib import Path

import optuna
import pytest
import sqlalchemy
import yaml

from conftest import PG_PASSWORD, ok_metrics, write_job
from sweeplab.cli import main as sweeplab


def write_study(sweep: Path, storage_url: str, named: str) -> None:
    """Three complete trials in ``storage_url``; the sweep dir names its storage as ``named``."""
    sweep.mkdir(parents=True)
    study = optuna.create_study(study_name="s", storage=storage_url, direction="maximize")
    for number in range(3):
        trial = study.ask({"lr": optuna.distributions.FloatDistribution(1e-3, 1.0, log=True)})
        study.tell(trial, 0.5 + number / 10)
        write_job(sweep, number, [f"lr={trial.params['lr']}"], ok_metrics(0.5 + number / 10, 0.5))
    (sweep / "optimization_results.yaml").write_text(yaml.safe_dump(
        {"study_name": "s", "storage": named, "directions": ["maximize"], "n_trials": 3}))
    study.trials_dataframe().to_csv(sweep / "trials.csv", index=False)


def report_text(sweep: Path, *args: str) -> str:
    """report.md as a viewer shows it (its character references resolved)."""
    sweeplab(["report", str(sweep), *args])
    return html.unescape((sweep / "report.md").read_text())


def test_a_sqlite_file_outside_the_sweep_dir_is_not_opened(tmp_path, capsys):
    elsewhere = tmp_path / "elsewhere.db"
    write_study(tmp_path / "study", f"sqlite:///{elsewhere}", f"sqlite:///{elsewhere}")
    assert "rebuilt from trials.csv (storage not loaded: FileNotFoundError: no file" in report_text(tmp_path / "study")
    given = report_text(tmp_path / "study", "--storage", f"sqlite:///{elsewhere}")
    assert f"loaded from its storage (sqlite:///{elsewhere})" in given


def test_a_journal_file_inside_the_sweep_dir_is_opened_as_the_sweeper_describes_it(tmp_path):
    sweep = tmp_path / "study"
    sweep.mkdir()
    journal = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(tmp_path / "j.log")))
    write_study(tmp_path / "tmp", journal, "unused")
    shutil.move(tmp_path / "j.log", sweep / "j.log")
    for path in (tmp_path / "tmp").iterdir():
        shutil.move(path, sweep / path.name)
    results = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    (sweep / "optimization_results.yaml").write_text(yaml.safe_dump({**results, "storage": "JournalStorage(j.log)"}))
    assert "loaded from its storage (JournalStorage(j.log))" in report_text(sweep)


@pytest.mark.slow
def test_a_password_protected_study_opens_with_the_users_url_and_the_password_is_never_shown(
        tmp_path, postgres, capsys, monkeypatch):
    url = postgres
    with pytest.raises(sqlalchemy.exc.OperationalError, match="password authentication failed"):
        optuna.storages.RDBStorage(url.replace(PG_PASSWORD, "wrong"))
    named = url.replace(PG_PASSWORD, "***")  # as the sweeper writes it
    sweep = tmp_path / "study"
    write_study(sweep, url, named)

    not_given = report_text(sweep)
    assert "is a server the sweep dir names, not opened without your word: pass --storage URL" in not_given
    by_option = report_text(sweep, "--storage", url)
    monkeypatch.setenv("SWEEPLAB_STORAGE", url)
    by_environment = report_text(sweep)

    for text in (by_option, by_environment):
        assert f"loaded from its storage ({named})" in text
    printed = capsys.readouterr()
    for path in sweep.rglob("*"):
        if path.is_file():
            assert PG_PASSWORD.encode() not in path.read_bytes(), path
    assert PG_PASSWORD not in printed.out + printed.err
