"""Every sweep process ends: a sweep exits after its last job on every launcher and sweeper, and a
parent killed with ``kill -9`` leaves no worker behind.

Real processes are the point here, so each case runs ``tests/apps/lifetime/app.py`` (a Hydra app
without torch whose jobs can hold until a signal ends them) in its own session, with a timeout that
kills the whole session and fails the test instead of hanging it.
"""
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, processes_left

APP = REPO / "tests" / "apps" / "lifetime" / "app.py"
GRID = ["hydra/sweeper=grid"]
OPTUNA = ["hydra/sweeper=optuna", "hydra/sweeper/sampler=random", "hydra.sweeper.sampler.seed=0", "x=choice(0,1,2,3)"]
POOL = ["hydra/launcher=pool", "hydra.launcher.n_workers=2"]
HANG_SECONDS = 120  # far beyond these tiny sweeps' run time, even on a loaded machine: only a hang gets there
GONE_SECONDS = 20  # how long workers may take to notice a dead parent and record their jobs


def start(tmp_path: Path, *overrides: str) -> tuple[subprocess.Popen, str]:
    """``app.py -m OVERRIDES`` in a session of its own, output in tmp_path/out.log; and the marker that its
    processes (forked workers included) carry on their command line."""
    marker = f"hydra.sweep.dir={tmp_path / 'sweep'}"
    with open(tmp_path / "out.log", "w") as out:
        proc = subprocess.Popen([sys.executable, str(APP), "-m", *overrides, marker], cwd=tmp_path,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    return proc, marker


def wait_or_fail(proc: subprocess.Popen, tmp_path: Path) -> int:
    """The exit code; a process still running after HANG_SECONDS is killed with its session, and the test fails."""
    try:
        return proc.wait(timeout=HANG_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        pytest.fail(f"still running after {HANG_SECONDS} s:\n{output(tmp_path)}")


def output(tmp_path: Path) -> str:
    return (tmp_path / "out.log").read_text()[-4000:]


@pytest.mark.slow
@pytest.mark.parametrize("overrides", [
    pytest.param(GRID + ["x=0,1,2,3"], id="grid-basic"),
    pytest.param(GRID + ["x=0,1,2,3", *POOL], id="grid-pool"),
    pytest.param(GRID + ["x=0,1,2,3", "hydra/launcher=fused"], id="grid-fused"),
    pytest.param(OPTUNA + ["hydra.sweeper.n_trials=4"], id="optuna-basic-1-worker"),
    pytest.param(OPTUNA + ["hydra.sweeper.n_trials=4", "hydra.sweeper.n_workers=2"], id="optuna-basic-2-workers"),
    pytest.param(OPTUNA + ["hydra.sweeper.n_trials=4", *POOL], id="optuna-pool-1-worker"),
    pytest.param(OPTUNA + ["hydra.sweeper.n_trials=4", *POOL, "hydra.sweeper.n_workers=2"], id="optuna-pool-2-workers"),
    pytest.param(OPTUNA + ["hydra.sweeper.n_trials=4", "hydra/launcher=fused", "hydra.sweeper.n_workers=2"],
                 id="optuna-fused-2-workers"),
])
def test_a_sweep_exits_after_its_last_job_and_leaves_no_process(tmp_path, overrides):
    proc, marker = start(tmp_path, *overrides)
    assert wait_or_fail(proc, tmp_path) == 0, output(tmp_path)
    assert sorted(path.parent.name for path in (tmp_path / "sweep").glob("*/pid")) == ["0", "1", "2", "3"]
    assert processes_left(marker, timeout=GONE_SECONDS) == []
