"""Two sweeps started at once against one PostgreSQL study (as on two machines) share its budget.

A real server: Debian's PostgreSQL (`make test-deps` installs it), a private cluster started on
loopback for this test module and removed after it (conftest's ``postgres``).
"""
import subprocess
import sys

import optuna
import pytest

from conftest import REPO
from sweeplab.jobfiles import read_metrics

pytestmark = pytest.mark.slow


def test_two_processes_share_one_study_and_its_budget(tmp_path, postgres):
    n_trials = 6
    command = [sys.executable, str(REPO / "train.py"), "-m", "hydra/sweeper=optuna",
               f"hydra.sweeper.storage={postgres}", "hydra.sweeper.study_name=shared",
               f"hydra.sweeper.n_trials={n_trials}", "lr=tag(log, interval(0.01, 0.5))", "model.width=choice(16, 64)",
               "data=synthetic", "data.n_train=1000", "data.n_test=200", "epochs=6"]
    # both start at the same moment against a fresh database, each with its own sweep dir ("machine")
    machines = [subprocess.Popen([*command, f"hydra.sweep.dir=machine{i}"], cwd=tmp_path,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for i in (0, 1)]
    outputs = [machine.communicate(timeout=300)[0] for machine in machines]
    for machine, output in zip(machines, outputs, strict=True):
        assert machine.returncode == 0, output[-3000:]

    study = optuna.load_study(study_name="shared", storage=postgres)
    ran = [t for t in study.trials if "skipped" not in t.user_attrs]
    assert [t.state.name for t in ran] == ["COMPLETE"] * n_trials
    # every trial ran exactly once, on one machine or the other, and both machines worked
    job_dirs = {int(p.name): p for i in (0, 1) for p in (tmp_path / f"machine{i}").iterdir() if p.is_dir()}
    assert sorted(job_dirs) == sorted(t.number for t in ran)
    assert all(any(p.is_dir() for p in (tmp_path / f"machine{i}").iterdir()) for i in (0, 1))
    for trial in ran:
        assert read_metrics(job_dirs[trial.number])["best_val_acc"] == trial.value
