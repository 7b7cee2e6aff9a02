"""Job accounting that never lies: the resume and the report read job dirs the same way, jobs of the
grid that never started count as missing, a dir without .hydra/ is named, an unknown status is unreadable."""
from __future__ import annotations

import json
from pathlib import Path

from hydra.core.hydra_config import HydraConfig

from conftest import multirun
from sweeplab.jobfiles import METRICS, UNREADABLE, Metrics, find_jobs, read_status, write_metrics
from sweeplab.report.collect import collect


class KilledAt:
    """Writes ok for each job, and stops the sweep (as a kill would) at job ``stop``."""

    def __init__(self, stop: int | None = None):
        self.stop = stop

    def __call__(self, cfg):
        hydra = HydraConfig.get()
        if hydra.job.num == self.stop:
            raise KeyboardInterrupt
        write_metrics(Path(hydra.runtime.output_dir), Metrics(status="ok", best_val_acc=0.5, test_acc_at_best_val=0.5))
        return 0.5


def test_the_report_counts_the_jobs_of_the_grid_that_never_started_as_missing(tmp_path):
    try:
        multirun(KilledAt(stop=2), tmp_path, "lr=0.1,0.01,0.001", "seed=0,1")
    except Exception:
        pass  # the sweep says it was interrupted
    jobs = collect([tmp_path]).jobs
    assert len(jobs) == 6
    assert sorted(jobs["status"]) == ["missing"] * 4 + ["ok"] * 2
    not_started = jobs[jobs["job"] == "not started"]
    never = set(zip(not_started["lr"], not_started["seed"], strict=True))
    assert len(not_started) == 3 and never == {(0.01, 1), (0.001, 0), (0.001, 1)}
    assert (jobs[jobs["job"] == "2"]["status"] == "missing").all()  # its dir, no metrics.json


def test_a_status_outside_the_known_set_is_unreadable_naming_the_file(tmp_path):
    multirun(KilledAt(), tmp_path, "lr=0.1,0.01")
    (tmp_path / "1" / METRICS).write_text(json.dumps({"status": None}))
    status, reason = read_status(tmp_path / "1")
    assert status == UNREADABLE and str(tmp_path / "1" / METRICS) in reason and "null" in reason
    jobs = collect([tmp_path]).jobs.set_index("job")
    assert jobs.loc["1", "status"] == UNREADABLE and str(tmp_path / "1" / METRICS) in jobs.loc["1", "reason"]
    assert len(jobs) == 2


def test_a_job_dir_without_hydra_config_is_named_in_the_resume_line(tmp_path, capsys):
    multirun(KilledAt(), tmp_path, "lr=0.1,0.01")
    for path in (tmp_path / "1" / ".hydra").iterdir():
        path.unlink()
    (tmp_path / "1" / ".hydra").rmdir()
    capsys.readouterr()
    again = KilledAt()
    multirun(again, tmp_path, "lr=0.1,0.01")
    out = capsys.readouterr().out
    assert "1 finished jobs skipped, 1 to run (0 failed, 0 interrupted, 1 new)" in out
    assert f"1 dir(s) left alone, not known as jobs: {tmp_path / '1' / '.hydra'}: missing" in out


def test_the_resume_and_the_report_find_the_same_jobs_with_any_subdir(tmp_path):
    multirun(KilledAt(), tmp_path, "lr=0.1,0.01", "hydra.sweep.subdir=run/${hydra.job.num}")
    found = find_jobs(tmp_path)
    assert sorted(job.dir.relative_to(tmp_path).as_posix() for job in found) == ["run/0", "run/1"]
    assert sorted(collect([tmp_path]).jobs["status"]) == ["ok", "ok"]
