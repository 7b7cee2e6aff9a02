"""A full disk is a recorded failure: the job's metrics.json ends ``failed`` naming the file that could
not be written and why; when metrics.json itself cannot be written, one log line says so. Either way
the error is one line (a ``FileError``), never a traceback. On a 1 MB tmpfs the test mounts (conftest's
``small_disk``)."""
import logging

import pytest

import sweeplab.job.task
from conftest import TINY, fill_disk
from sweeplab.errors import FileError
from sweeplab.job.task import run
from sweeplab.jobfiles import read_metrics


def test_a_checkpoint_that_does_not_fit_fails_the_job_and_metrics_json_says_why(make_cfg, small_disk):
    job_dir = small_disk / "job"
    # 784-256-10: a checkpoint (last and best weights) is about 1.6 MB
    with pytest.raises(FileError) as info:
        run(make_cfg(*TINY, "checkpoint=true"), job_dir)
    message = f"cannot write {job_dir / 'checkpoint.pt'}: No space left on device"
    assert str(info.value) == message
    metrics = read_metrics(job_dir)
    assert metrics["status"] == "failed" and metrics["reason"] == f"FileError: {message}"
    assert not list(job_dir.glob(".*.tmp")), "a temporary file was left behind"


def test_when_even_metrics_json_cannot_be_written_one_line_says_which_file_and_why(
    make_cfg, small_disk, monkeypatch, caplog,
):
    set_up = sweeplab.job.task.set_up

    def disk_fills_up(cfg):  # after the job wrote `running`, before its first epoch
        fill_disk(small_disk)
        return set_up(cfg)

    monkeypatch.setattr(sweeplab.job.task, "set_up", disk_fills_up)
    job_dir = small_disk / "job"
    with caplog.at_level(logging.ERROR), pytest.raises(FileError, match="history.csv: No space left on device"):
        run(make_cfg(*TINY), job_dir)
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert lines == [f"cannot write {job_dir / 'metrics.json'} (No space left on device): the job failed: "
                     f"FileError: cannot write {job_dir / 'history.csv'}: No space left on device"]
    assert read_metrics(job_dir)["status"] == "running"  # what it was before the disk filled


def test_a_job_that_cannot_even_start_on_a_full_disk_says_so_in_one_line(make_cfg, small_disk):
    fill_disk(small_disk)
    with pytest.raises(FileError, match=r"cannot write .*metrics\.json: No space left on device"):
        run(make_cfg(*TINY), small_disk / "job")
