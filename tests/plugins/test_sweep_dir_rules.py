"""What a sweep dir allows: one sweep at a time (a lock held by the sweep's process), one grid (unless
extended, and then sweep.yaml keeps every grid and invocation), job dirs only inside it."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hydra.core.hydra_config import HydraConfig

from conftest import multirun
from sweeplab.errors import ConfigError
from sweeplab.jobfiles import SWEEP, Metrics, read_invocations, write_metrics
from sweeplab.sweep.sweep_lock import SweepDirBusy, hold_study_dir, hold_sweep_dir

HOLD = """
import sys, time
from pathlib import Path
from sweeplab.sweep.sweep_lock import hold_study_dir
hold_study_dir(Path(sys.argv[1]), sys.argv[2] if sys.argv[2] != "-" else None, "study")
print("held", flush=True)
time.sleep(120)
"""
POSTGRES = "postgresql+psycopg2://me:S3cret@db.example:5432/studies"


@pytest.fixture
def holder(tmp_path):
    """Start a process that holds ``tmp_path / 'sweep'`` as a study in ``storage`` ("-": the default file)."""
    started = []

    def start(storage: str = "-") -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path / "sweep"), storage],
                                stdout=subprocess.PIPE, text=True)
        started.append(proc)
        assert proc.stdout.readline().strip() == "held"
        return proc

    yield start
    for proc in started:
        proc.kill()
        proc.wait(timeout=30)


def stand_in(cfg):
    job_dir = Path(HydraConfig.get().runtime.output_dir)
    write_metrics(job_dir, Metrics(status="ok", best_val_acc=1 - abs(cfg.lr - 0.05)))
    return cfg.lr


def test_a_second_sweep_into_a_held_dir_is_refused_naming_the_holder(tmp_path, holder):
    proc = holder()
    for sweeper in ([], ["hydra/sweeper=optuna", "hydra.sweeper.n_trials=1"]):
        with pytest.raises(SweepDirBusy) as refused:
            multirun(stand_in, tmp_path / "sweep", "lr=0.1,0.01", *sweeper)
        message = str(refused.value)
        assert f"another sweep is running in it ({socket.gethostname()}:{proc.pid}: " in message
        assert "-c" in message and "\n" not in message
    assert not [p for p in (tmp_path / "sweep").iterdir() if p.is_dir()]  # no job started


def test_the_lock_dies_with_its_process(tmp_path, holder):
    proc = holder()
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    multirun(stand_in, tmp_path / "sweep", "lr=0.1")
    assert (tmp_path / "sweep" / "0" / "metrics.json").is_file()


def test_processes_of_one_study_in_a_database_server_share_the_dir_and_nothing_else_does(tmp_path, holder):
    proc = holder(POSTGRES)
    lock = hold_study_dir(tmp_path / "sweep", POSTGRES, "study")  # the same command, joining
    lock.release()
    for storage, study in ((POSTGRES, "another"), (None, "study"), (f"sqlite:///{tmp_path}/x.db", "study")):
        with pytest.raises(SweepDirBusy, match=f"{proc.pid}"):
            hold_study_dir(tmp_path / "sweep", storage, study)
    with pytest.raises(SweepDirBusy):
        multirun(stand_in, tmp_path / "sweep", "lr=0.1")
    assert "S3cret" not in (tmp_path / "sweep" / ".sweeplab.lock").read_text()


def test_a_dir_held_alone_refuses_a_study_that_would_join(tmp_path, holder):
    holder()
    with pytest.raises(SweepDirBusy):
        hold_study_dir(tmp_path / "sweep", POSTGRES, "study")


def test_a_process_holds_its_dir_once_and_releases_it(tmp_path):
    with hold_sweep_dir(tmp_path):
        with hold_sweep_dir(tmp_path):  # an in-process sweep inside another: no deadlock on itself
            pass
        probe = subprocess.run([sys.executable, "-c", HOLD, str(tmp_path), "-"], timeout=60,
                               capture_output=True, text=True)
        assert probe.returncode != 0 and "another sweep is running" in probe.stderr
    multirun(stand_in, tmp_path, "lr=0.1")  # released


def test_another_grid_is_refused_in_one_line_naming_the_dir_and_the_difference(tmp_path):
    multirun(stand_in, tmp_path, "lr=0.1,0.01", "model.width=16")
    with pytest.raises(ConfigError) as refused:
        multirun(stand_in, tmp_path, "lr=0.5", "model.width=32")
    message = str(refused.value)
    assert f"hydra.sweep.dir={tmp_path} holds a sweep of another grid (2 jobs" in message
    assert "lr: 0.1,0.01 there, 0.5 here" in message and "model.width: 16 there, 32 here" in message
    assert "hydra.sweeper.extend=true" in message and "\n" not in message
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["0", "1"]


def test_the_same_grid_in_another_order_or_spelling_resumes(tmp_path):
    multirun(stand_in, tmp_path, "lr=0.1,0.01", "model.width=16")
    multirun(stand_in, tmp_path, "model.width=16", "lr=1e-2,0.10")
    assert len(read_invocations(tmp_path)) == 2


def test_extend_adds_a_grid_and_sweep_yaml_keeps_every_grid_and_invocation(tmp_path):
    multirun(stand_in, tmp_path, "lr=0.1,0.01")
    multirun(stand_in, tmp_path, "lr=0.5", "hydra.sweeper.extend=true")
    multirun(stand_in, tmp_path, "lr=0.1,0.01")  # each grid run before, and all of them, resume
    multirun(stand_in, tmp_path, "lr=0.5")
    multirun(stand_in, tmp_path, "lr=0.1,0.01,0.5")
    invocations = read_invocations(tmp_path)
    assert [len(i.jobs) for i in invocations] == [2, 1, 2, 1, 3]
    assert invocations[1].jobs == [["lr=0.5"]]
    assert all(i.started <= i.ended for i in invocations)
    assert invocations[0].ended <= invocations[1].started
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["0", "1", "2"]
    assert yaml.safe_load((tmp_path / SWEEP).read_text())["invocations"][0]["jobs"] == [["lr=0.1"], ["lr=0.01"]]


def test_a_dir_of_an_older_version_refuses_a_grid_without_its_jobs(tmp_path):
    multirun(stand_in, tmp_path, "lr=0.1,0.01")
    (tmp_path / SWEEP).unlink()  # as an older version left it
    multirun(stand_in, tmp_path, "lr=0.1,0.01,0.5")  # the old jobs are in it: a killed sweep resumes
    (tmp_path / SWEEP).unlink()
    with pytest.raises(ConfigError, match="another grid"):
        multirun(stand_in, tmp_path, "lr=0.2")


def test_a_grid_ends_naming_the_best_config_and_the_report_command(tmp_path, capsys):
    multirun(stand_in, tmp_path, "lr=0.1,0.05,0.01", "seed=3")
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert f"best so far by best_val_acc: 1 (lr=0.05 seed=3) in {tmp_path / '1'}" in last
    assert last.endswith(f"report: sweeplab report {tmp_path}")


@pytest.mark.parametrize("subdir", ["../escaped_${hydra.job.num}", "/tmp/x_${hydra.job.num}", "a/../../b"])
def test_a_subdir_outside_the_sweep_dir_is_refused(tmp_path, subdir):
    with pytest.raises(ConfigError, match="hydra.sweep.subdir=.*outside hydra.sweep.dir"):
        multirun(stand_in, tmp_path / "sweep", "lr=0.1", f"hydra.sweep.subdir={subdir}")
    assert not (tmp_path / "escaped_0").exists()


def test_a_file_as_sweep_dir_ends_in_one_line(tmp_path):
    (tmp_path / "file").write_text("")
    for sweep_dir in (tmp_path / "file", tmp_path / "file" / "sub"):
        with pytest.raises(ConfigError, match=f"hydra.sweep.dir={sweep_dir}: cannot create or write it"):
            multirun(stand_in, sweep_dir, "lr=0.1")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only dirs")
def test_a_read_only_sweep_dir_ends_in_one_line(tmp_path):
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(ConfigError, match="cannot create or write it: Permission denied"):
            multirun(stand_in, tmp_path / "sweep", "lr=0.1")
    finally:
        tmp_path.chmod(0o700)
