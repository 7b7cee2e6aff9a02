"""sweeplab report's own files on a full disk, and inputs it cannot read: one line naming the file, a
non-zero exit status, and every file of an earlier report left whole."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import file_states, missing_environment, report_exit_code, write_grid
from sweeplab.cli import main as sweeplab


@pytest.fixture
def small_disk():
    """A 2 MB tmpfs mounted for this test (root only), unmounted after it."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        missing_environment("a small filesystem needs root to mount a tmpfs (run the tests as root)")
    mount_point = Path(tempfile.mkdtemp(prefix="sweeplab-small-disk-"))
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount_point)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        mount_point.rmdir()
        missing_environment(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=True)
        mount_point.rmdir()


def fill(disk: Path) -> None:
    """Leave ``disk`` with no free block."""
    with (disk / "filler").open("wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass


def test_a_report_on_a_full_disk_names_the_file_and_leaves_the_previous_report_whole(tmp_path, small_disk, capsys):
    sweep, out = tmp_path / "lr", small_disk / "report"
    write_grid(sweep, {0.1: [0.80, 0.82, 0.84], 0.01: [0.70, 0.71, 0.72]})
    sweeplab(["report", str(sweep), "--out", str(out)])
    previous = file_states(out)
    assert {Path(name).name for name in previous} >= {"report.md", "report.html", "summary.csv", "jobs.csv",
                                                     "accuracy_vs_lr.png", "curves_lr.png"}
    write_grid(tmp_path / "lr2", {0.5: [0.3, 0.4], 0.05: [0.6, 0.65]})  # another report: other bytes
    capsys.readouterr()
    fill(small_disk)

    assert report_exit_code(str(tmp_path / "lr2"), "--out", str(out)) == 2

    error = capsys.readouterr().err
    assert len(error.strip().splitlines()) == 1, error
    assert f"{out}/" in error and "No space left on device" in error
    assert file_states(out) == previous  # nothing overwritten by half a file
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary file left


DAMAGED_STUDY_FILES = {
    "empty trials.csv": ("trials.csv", "", "EmptyDataError"),
    "trials.csv of other columns": ("trials.csv", "a,b\n1,2\n", "no columns number and state"),
    "damaged optimization_results.yaml": ("optimization_results.yaml", "study_name: [x\nstorage: {", "ParserError"),
    "optimization_results.yaml not a mapping": ("optimization_results.yaml", "- 1\n- 2\n", "not a mapping"),
}


@pytest.mark.parametrize("case", DAMAGED_STUDY_FILES)
def test_a_damaged_study_file_gives_one_line_naming_it(tmp_path, capsys, case):
    sweep = tmp_path / "study"
    write_grid(sweep, {0.1: [0.80, 0.82]})
    name, text, reason = DAMAGED_STUDY_FILES[case]
    (sweep / name).write_text(text)

    assert report_exit_code(str(sweep)) == 2

    error = capsys.readouterr().err
    assert len(error.strip().splitlines()) == 1, error
    assert str(sweep / name) in error and reason in error
