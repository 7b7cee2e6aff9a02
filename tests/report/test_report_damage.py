"""sweeplab report on damaged sweep dirs: every damaged job is counted and listed as `unreadable`
with the file and the reason, the rest of the report is written, and the exit status is 3."""
from __future__ import annotations

import json
import os
import socket
import subprocess

import pandas as pd
import pytest

from conftest import file_states, ok_metrics, report_exit_code, write_grid, write_job
from sweeplab.cli import main as sweeplab
from sweeplab.report.build import write_report


def damaged_grid(tmp_path):
    """A grid of 2 lr x 3 seeds, all ok; the caller damages job 5."""
    sweep = tmp_path / "lr"
    write_grid(sweep, {0.1: [0.80, 0.82, 0.84], 0.01: [0.70, 0.71, 0.72]})
    return sweep, sweep / "5"


DAMAGE = {
    "truncated metrics.json": ("metrics.json", lambda p: p.write_text(p.read_text()[:40]), "JSONDecodeError"),
    "metrics.json not JSON": ("metrics.json", lambda p: p.write_text("status: ok\n"), "JSONDecodeError"),
    "metrics.json without status": ("metrics.json", lambda p: p.write_text("{}"), "KeyError: 'status'"),
    "empty history.csv": ("history.csv", lambda p: p.write_text(""), "EmptyDataError"),
    "malformed history.csv": ("history.csv", lambda p: p.write_text('a,"b\n1,2,3,4\n'), "ParserError"),
    "history.csv of other columns": ("history.csv", lambda p: p.write_text("x,y\n1,2\n"), "no column epoch, val_acc"),
    "no .hydra/": (".hydra", lambda p: [f.unlink() for f in p.iterdir()] and p.rmdir(), "missing, so the job's"),
    "overrides.yaml not a list": (".hydra/overrides.yaml", lambda p: p.write_text("lr: [unclosed\n"), "Error"),
}


@pytest.mark.parametrize("case", DAMAGE)
def test_a_damaged_job_is_listed_unreadable_and_the_rest_is_reported(tmp_path, capsys, case):
    sweep, damaged = damaged_grid(tmp_path)
    name, damage, reason = DAMAGE[case]
    damage(damaged / name)
    intact = file_states(*(sweep / str(job) for job in range(5)))

    assert report_exit_code(str(sweep)) == 3
    assert "1 job dir(s) unreadable" in capsys.readouterr().err

    jobs = pd.read_csv(sweep / "jobs.csv")
    row = jobs[jobs["job"] == 5].iloc[0]
    assert row["status"] == "unreadable"
    assert str(damaged / name) in row["reason"] and reason in row["reason"]
    summary = pd.read_csv(sweep / "summary.csv").set_index("config")
    assert summary.loc["lr=0.1", "n"] == 3 and summary.loc["lr=0.01", "n"] == 2  # the rest still counts
    assert list(summary.index) == ["lr=0.1", "lr=0.01"]
    markdown = (sweep / "report.md").read_text()
    assert "1 job dir(s) could not be read" in markdown and f"lr/5: {damaged / name}" in markdown
    assert (sweep / "report.html").is_file()
    assert file_states(*(sweep / str(job) for job in range(5))) == intact


def test_an_intact_sweep_exits_0(tmp_path):
    sweep, _ = damaged_grid(tmp_path)
    assert sweeplab(["report", str(sweep)]) is None  # a non-zero exit would raise SystemExit here
    assert (pd.read_csv(sweep / "jobs.csv")["status"] == "ok").sum() == 6
    assert list(pd.read_csv(sweep / "summary.csv")["n"]) == [3, 3]


def test_a_killed_job_still_saying_running_is_shown_interrupted_with_its_last_write(tmp_path):
    sweep = tmp_path / "lr"
    write_job(sweep, 0, ["lr=0.1"], ok_metrics(0.8, 0.8))
    dead = subprocess.Popen(["true"])
    dead.wait()  # a pid no process has any more, as after kill -9
    write_job(sweep, 1, ["lr=0.01"], {"status": "running", "process": f"{socket.gethostname()}:{dead.pid}"})
    write_job(sweep, 2, ["lr=0.001"], {"status": "running", "process": f"{socket.gethostname()}:{os.getpid()}"})
    os.utime(sweep / "1" / "metrics.json", (1.7e9, 1.7e9))
    os.utime(sweep / "1" / ".hydra" / "config.yaml", (1.7e9, 1.7e9))  # not a file of the job dir itself

    write_report([sweep], sweep)

    jobs = pd.read_csv(sweep / "jobs.csv").set_index("job")
    assert jobs.loc[1, "status"] == "interrupted"
    assert jobs.loc[1, "reason"].startswith(f"stale: its process {dead.pid} is gone")
    assert "files last written 2023-11-14" in jobs.loc[1, "reason"]
    assert jobs.loc[2, "status"] == "running" and jobs.loc[2, "reason"].startswith(f"process {os.getpid()};")


def test_two_dirs_of_the_same_job_count_once_the_newest_finished_one(tmp_path):
    sweep = tmp_path / "lr"
    write_job(sweep, 0, ["lr=0.1", "seed=0"], ok_metrics(0.80, 0.8))
    write_job(sweep, 1, ["lr=0.1", "seed=1"], ok_metrics(0.70, 0.7))
    write_job(sweep, 2, ["seed=1", "lr=0.1"], {"status": "failed", "reason": "boom"})  # newer, not finished
    write_job(sweep, 3, ["lr=0.1", "seed=0"], ok_metrics(0.90, 0.9))  # a rerun of job 0, newer
    for job, when in ((0, 1.7e9), (1, 1.7e9), (2, 1.8e9), (3, 1.8e9)):
        os.utime(sweep / str(job) / "metrics.json", (when, when))

    write_report([sweep], sweep)

    jobs = pd.read_csv(sweep / "jobs.csv")
    assert list(jobs["job"]) == [1, 3]
    assert pd.read_csv(sweep / "summary.csv")["val_mean"].iloc[0] == pytest.approx(0.8)


def test_metrics_json_of_valid_json_but_not_an_object_is_unreadable(tmp_path):
    sweep, damaged = damaged_grid(tmp_path)
    (damaged / "metrics.json").write_text(json.dumps([1, 2]))
    assert report_exit_code(str(sweep)) == 3
    assert pd.read_csv(sweep / "jobs.csv")["status"].tolist().count("unreadable") == 1
