"""sweeplab report on an Optuna study of any Hydra app (jobs that write no metrics.json): trials,
states, params, objective values and intermediate values from the study's storage; multi-objective
studies get their Pareto front as a plot, in the findings and as jobs.csv's `pareto` column; a dir
it cannot make sense of is one line and a non-zero exit."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import optuna
import pandas as pd
import pytest
import yaml
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState

from conftest import REPO, write_job
from sweeplab.cli import main as sweeplab
from sweeplab.report.build import write_report

EXAMPLES = REPO / "tests" / "apps" / "optuna_examples"


@pytest.mark.slow
def test_a_multi_objective_study_of_another_app_is_reported_with_its_pareto_front(tmp_path, capsys):
    sweep = tmp_path / "mo"
    done = subprocess.run([sys.executable, str(EXAMPLES / "multi-objective.py"), "--multirun",
                           f"hydra.sweep.dir={sweep}", "hydra.sweeper.n_trials=8", "hydra/sweeper/sampler=random"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    study = optuna.load_study(study_name="multi-objective", storage=f"sqlite:///{sweep / 'optuna.db'}")

    sweeplab(["report", str(sweep)])  # returns: exit status 0

    jobs = pd.read_csv(sweep / "jobs.csv").sort_values("job")
    assert list(jobs["status"]) == ["ok"] * 8 and list(jobs["trial_state"]) == ["COMPLETE"] * 8
    assert list(jobs["values_0"]) == [t.values[0] for t in study.trials]
    assert list(jobs["values_1"]) == [t.values[1] for t in study.trials]
    front = {t.number for t in study.best_trials}
    assert set(jobs.loc[jobs["pareto"], "job"]) == front
    assert (sweep / "optuna_pareto_mo.png").stat().st_size > 1000
    printed = capsys.readouterr().out
    assert f"Pareto front, {len(front)} trial(s)" in printed and "no job finished ok" not in printed


def write_app_study(sweep: Path) -> None:
    """Four trials of an app whose jobs write no metrics.json, each reporting number + 1 intermediate
    values (10, 9, ...): COMPLETE 3.0, PRUNED, COMPLETE 1.5, FAIL; minimised."""
    sweep.mkdir()
    storage = f"sqlite:///{sweep / 'optuna.db'}"
    study = optuna.create_study(study_name="app", storage=storage, direction="minimize")
    outcomes = [(TrialState.COMPLETE, 3.0), (TrialState.PRUNED, None), (TrialState.COMPLETE, 1.5),
                (TrialState.FAIL, None)]
    for number, (state, value) in enumerate(outcomes):
        trial = study.ask({"x": FloatDistribution(-5, 5)})
        for step in range(number + 1):
            trial.report(10.0 - step, step)
        study.tell(trial, value, state=None if value is not None else state)
        write_job(sweep, number, [f"x={trial.params['x']}"], None)  # an app's job: .hydra/ only
    (sweep / "optimization_results.yaml").write_text(yaml.safe_dump(
        {"study_name": "app", "storage": storage, "directions": ["minimize"], "n_trials": 4}))
    study.trials_dataframe().to_csv(sweep / "trials.csv", index=False)


def test_a_single_objective_study_shows_states_values_and_intermediate_values_from_its_storage(tmp_path):
    sweep = tmp_path / "app"
    write_app_study(sweep)

    report = write_report([sweep], sweep)

    jobs = pd.read_csv(sweep / "jobs.csv")
    assert list(jobs["status"]) == ["ok", "pruned", "ok", "failed"]
    assert list(jobs["pareto"]) == [False, False, True, False]  # one objective: the best trial
    assert jobs["value"].tolist()[::2] == [3.0, 1.5]
    markdown = (sweep / "report.md").read_text()
    assert "best trial #2: values 1.5; x=" in report.text
    rows = [line for line in markdown.splitlines() if line.startswith("| 1 | PRUNED")]
    assert len(rows) == 1 and "| 2 | 9 |" in rows[0]  # two intermediate values, the last 9


def test_without_its_storage_the_states_and_the_best_trial_come_from_trials_csv(tmp_path):
    sweep = tmp_path / "app"
    write_app_study(sweep)
    (sweep / "optuna.db").unlink()

    report = write_report([sweep], sweep)

    jobs = pd.read_csv(sweep / "jobs.csv")
    assert list(jobs["status"]) == ["ok", "pruned", "ok", "failed"]
    assert list(jobs["trial_state"]) == ["COMPLETE", "PRUNED", "COMPLETE", "FAIL"]
    assert list(jobs["pareto"]) == [False, False, True, False]  # trial 2, not the rebuilt study's trial 1
    assert "best trial #2: values 1.5" in report.text


def test_job_dirs_without_metrics_and_without_a_study_are_one_line_and_exit_2(tmp_path, capsys):
    sweep = tmp_path / "app_grid"
    for job in range(3):
        write_job(sweep, job, [f"x={job}"], None)
    with pytest.raises(SystemExit) as info:
        sweeplab(["report", str(sweep)])
    assert info.value.code == 2
    error = capsys.readouterr().err
    assert len(error.strip().splitlines()) == 1
    assert f"{sweep}: none of its job dirs has a metrics.json" in error and "nothing to report" in error
    assert not (sweep / "report.md").exists()


def test_a_multi_objective_train_study_marks_its_pareto_trials_in_jobs_csv(tmp_path):
    sweep = tmp_path / "mo_train"
    sweep.mkdir()
    storage = f"sqlite:///{sweep / 'optuna.db'}"
    study = optuna.create_study(study_name="mo", storage=storage, directions=["maximize", "minimize"])
    for number, values in enumerate([[0.8, 3.0], [0.7, 1.0], [0.6, 2.0]]):  # #2 is dominated by #1
        trial = study.ask({"lr": FloatDistribution(1e-3, 1.0, log=True)})
        study.tell(trial, values)
        write_job(sweep, number, [f"lr={trial.params['lr']}"], {"status": "ok", "best_val_acc": values[0],
                                                                "test_acc_at_best_val": values[0],
                                                                "epochs_completed": 1})
    (sweep / "optimization_results.yaml").write_text(yaml.safe_dump(
        {"study_name": "mo", "storage": storage, "directions": ["maximize", "minimize"], "n_trials": 3}))
    study.trials_dataframe().to_csv(sweep / "trials.csv", index=False)

    write_report([sweep], sweep)

    assert list(pd.read_csv(sweep / "jobs.csv")["pareto"]) == [True, True, False]
    assert (sweep / "optuna_pareto_mo_train.png").is_file()
    assert Path(sweep / "summary.csv").is_file()
