"""sweeplab report on Optuna sweep dirs: a real study in SQLite, its trials.csv and
optimization_results.yaml written as the sweeper writes them, and one job dir per trial."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from optuna.distributions import CategoricalDistribution, IntDistribution
from optuna.trial import TrialState

from conftest import TRIALS, write_optuna_sweep
from sweeplab.report.build import write_report
from sweeplab.report.collect import collect
from sweeplab.report.optuna_files import load_study, read_optuna_files
from sweeplab.report.plots import accuracy_vs_param, optimisation_history
from sweeplab.report.stats import summarize


@pytest.fixture
def study_dir(tmp_path: Path) -> Path:
    write_optuna_sweep(tmp_path / "optuna_test", ["maximize"], [values for _, values in TRIALS])
    return tmp_path / "optuna_test"


def test_optuna_sweep_gets_its_history_and_importances(study_dir):
    report = write_report([study_dir], study_dir)

    for name in ("optuna_history_optuna_test.png", "optuna_importance_optuna_test.png"):
        assert (study_dir / name).stat().st_size > 1000, name
    markdown = (study_dir / "report.md").read_text()
    assert "## Optuna study: optuna_test" in markdown
    assert "trials by state: COMPLETE 5, PRUNED 1, FAIL 1, RUNNING 1" in markdown
    assert "best trial: #5: values 0.85" in markdown
    assert f"on the study loaded from its storage (sqlite:///{study_dir / 'optuna.db'})" in markdown
    jobs = pd.read_csv(study_dir / "jobs.csv")
    assert list(jobs["trial_state"]) == ["COMPLETE", "COMPLETE", "PRUNED", "COMPLETE", "FAIL", "COMPLETE",
                                         "COMPLETE", "RUNNING"]
    assert list(jobs["status"]) == ["ok", "ok", "pruned", "ok", "failed", "ok", "ok", "running"]
    sweeps = collect([study_dir])
    assert sweeps.swept == {"optuna_test": ["lr", "model.width", "optimizer"]}
    by_lr = accuracy_vs_param(summarize(sweeps.jobs, sweeps.swept), "lr", sweeps.swept).axes[0]
    assert len(by_lr.containers) == 1  # every trial its own combo of the others: one series, not five
    assert by_lr.containers[0].lines[0].get_linestyle() == "None"  # points, not joined
    assert "0.850" in report.text  # the best trial's accuracy in the printed summary


def test_history_marks_every_trial_and_draws_the_best_so_far(study_dir):
    files = read_optuna_files(study_dir)
    ax = optimisation_history(files, "optuna_test").axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert list(lines["complete"].get_xdata()) == [0, 1, 3, 5, 6]
    assert list(lines["best so far"].get_ydata()) == [0.60, 0.75, 0.75, 0.85, 0.85]
    for state, number in (("pruned", 2), ("fail", 4), ("running", 7)):
        assert list(lines[f"{state} (no value; at the bottom)"].get_xdata()) == [number]


def test_without_its_storage_the_study_is_rebuilt_from_trials_csv(study_dir):
    stored, _ = load_study(read_optuna_files(study_dir), study_dir)
    (study_dir / "optuna.db").unlink()

    rebuilt, source = load_study(read_optuna_files(study_dir), study_dir)

    assert source.startswith("rebuilt from trials.csv (storage not loaded: FileNotFoundError")
    assert not (study_dir / "optuna.db").exists()  # not created empty by the attempt
    complete = [t for t in stored.trials if t.state == TrialState.COMPLETE]
    assert [t.values for t in rebuilt.trials] == [t.values for t in complete]
    assert [t.params for t in rebuilt.trials] == [t.params for t in complete]
    distributions = rebuilt.trials[0].distributions
    assert distributions["lr"].log and isinstance(distributions["model.width"], IntDistribution)
    assert isinstance(distributions["optimizer"], CategoricalDistribution)
    write_report([study_dir], study_dir)
    assert (study_dir / "optuna_importance_optuna_test.png").is_file()
    assert "rebuilt from trials.csv" in (study_dir / "report.md").read_text()


def test_a_moved_sweep_dir_finds_its_study_file_beside_it(study_dir, tmp_path):
    moved = study_dir.rename(tmp_path / "moved")
    _, source = load_study(read_optuna_files(moved), moved)
    assert source.startswith("loaded from its storage")


def test_multi_objective_study_has_a_panel_per_objective_and_its_pareto_front(tmp_path):
    sweep = tmp_path / "pareto"
    values = [[v[0], 1.0 - v[0] / 2] if v else None for _, v in TRIALS]  # both objectives rise together
    write_optuna_sweep(sweep, ["maximize", "minimize"], values)

    write_report([sweep], sweep)

    figure = optimisation_history(read_optuna_files(sweep), "pareto")
    assert [ax.get_ylabel() for ax in figure.axes] == ["objective 0 (maximize)", "objective 1 (minimize)"]
    markdown = (sweep / "report.md").read_text()
    assert "Pareto front: #5: values 0.85, 0.575" in markdown
    assert (sweep / "optuna_importance_pareto.png").is_file()
