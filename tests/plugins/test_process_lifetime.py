"""Every sweep process ends: a sweep exits after its last job on every launcher and sweeper, and a
parent killed with ``kill -9`` leaves no worker behind.

Real processes are the point here, so each case runs ``tests/apps/lifetime/app.py`` (a Hydra app
without torch whose jobs can hold until a signal ends them) in its own session, with a timeout that
kills the whole session and fails the test instead of hanging it.
"""
import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
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


def no_process_left(marker: str, tmp_path: Path) -> None:
    """Assert that no process carrying ``marker`` is left (after GONE_SECONDS), naming each one left:
    its state, what it waits in, and the sweep's output. Those left are killed, not to burden other tests."""
    left = processes_left(marker, timeout=GONE_SECONDS)
    states = []
    for pid in left:
        with contextlib.suppress(OSError):
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            wchan = Path(f"/proc/{pid}/wchan").read_text()
            states.append(f"pid {pid}: state {stat[0]}, parent {stat[1]}, waiting in {wchan}")
            os.kill(pid, signal.SIGKILL)
    assert left == [], "\n".join(states) + "\n" + output(tmp_path)


def wait_for_jobs(proc: subprocess.Popen, tmp_path: Path, jobs: str) -> None:
    """Wait until each of ``jobs`` (job numbers) has started, plus a moment for a quick one to finish."""
    deadline = time.monotonic() + HANG_SECONDS
    while not all((tmp_path / "sweep" / job / "pid").exists() for job in jobs):
        if proc.poll() is not None or time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail(f"jobs {jobs} never all started (exit code {proc.poll()}):\n{output(tmp_path)}")
        time.sleep(0.05)
    time.sleep(1)


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
    no_process_left(marker, tmp_path)


# job 0 ends at once and job 1 holds: the kill finds one worker running a job and one between jobs
# (a pool worker waiting for its next job, an Optuna worker waiting for the running trial to end)
@pytest.mark.slow
@pytest.mark.parametrize("overrides", [
    pytest.param(GRID + ["x=0,1", *POOL], id="grid-pool"),
    pytest.param(OPTUNA + ["hydra.sweeper.n_trials=2", "hydra.sweeper.n_workers=2"], id="optuna-basic-2-workers"),
    pytest.param(OPTUNA + ["hydra.sweeper.n_trials=2", *POOL], id="optuna-pool-1-worker"),
    pytest.param(OPTUNA + ["hydra.sweeper.n_trials=2", *POOL, "hydra.sweeper.n_workers=2"], id="optuna-pool-2-workers"),
])
def test_a_parent_killed_with_sigkill_leaves_no_worker_behind(tmp_path, overrides):
    proc, marker = start(tmp_path, "hold_from=1", *overrides)
    wait_for_jobs(proc, tmp_path, "01")
    proc.kill()
    proc.wait()
    no_process_left(marker, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("overrides", [
    pytest.param(GRID + ["x=0,1", *POOL], id="grid-pool"),
    pytest.param(OPTUNA + ["hydra.sweeper.n_trials=2", "hydra.sweeper.n_workers=2"], id="optuna-basic-2-workers"),
    pytest.param(OPTUNA + ["hydra.sweeper.n_trials=2", *POOL, "hydra.sweeper.n_workers=2"], id="optuna-pool-2-workers"),
])
def test_ctrl_c_stops_every_worker_without_a_traceback(tmp_path, overrides):
    """Ctrl-C in a terminal: SIGINT to the whole process group, workers included."""
    proc, marker = start(tmp_path, "hold_from=0", *overrides)
    wait_for_jobs(proc, tmp_path, "01")
    os.killpg(proc.pid, signal.SIGINT)
    assert wait_or_fail(proc, tmp_path) != 0
    assert "Traceback" not in output(tmp_path) and "race condition" not in output(tmp_path), output(tmp_path)
    no_process_left(marker, tmp_path)


def run_python(code: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], capture_output=True, text=True,
                          timeout=HANG_SECONDS)


def test_a_worker_stops_once_when_ctrl_c_and_sigterm_arrive_together():
    # both signals pending before Python runs a handler, as when the terminal's SIGINT and the main
    # process's SIGTERM reach a worker at the same moment
    result = run_python("""
        import os, signal, time
        from sweeplab.job.workers import become_worker
        become_worker(1, 0)
        both = {signal.SIGINT, signal.SIGTERM}
        signal.pthread_sigmask(signal.SIG_BLOCK, both)
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGTERM)
        try:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, both)
            time.sleep(60)
        except KeyboardInterrupt:
            print("stopped")
        time.sleep(0.5)  # the second signal's handler runs meanwhile
        print("recorded")
    """)
    assert result.returncode == 0 and result.stdout.split() == ["stopped", "recorded"], result.stderr
    assert result.stderr == ""


def test_a_stop_that_lands_in_a_finalizer_still_stops_the_worker():
    # Python drops an exception raised while it runs a finalizer ("Exception ignored in"): the stop must
    # be raised again where the worker's own code runs, or the worker runs its next jobs
    result = run_python("""
        import os, signal, time
        from sweeplab.job.workers import become_worker
        become_worker(1, 0)

        class Finalized:
            def __del__(self):
                os.kill(os.getpid(), signal.SIGTERM)  # its handler runs in here
                for _ in range(10_000):
                    pass

        try:
            Finalized()  # dropped at once: its finalizer runs
            time.sleep(60)
            print("ran on")
        except KeyboardInterrupt:
            print("stopped")
    """)
    assert result.stdout.split() == ["stopped"], result.stdout + result.stderr
    assert "Exception ignored" not in result.stderr and "Traceback" not in result.stderr, result.stderr


def test_a_worker_whose_parent_died_before_it_armed_the_death_signal_exits(tmp_path):
    """The parent exits right after forking; the worker sets itself up only once it is an orphan, so
    no death signal can ever come: it must see for itself that its parent is gone."""
    marker = str(tmp_path / "orphan")
    result = run_python("""
        import multiprocessing, os, sys, time
        from sweeplab.job.workers import become_worker

        def worker(parent):
            while os.getppid() == parent:
                time.sleep(0.01)
            try:
                become_worker(1, 0)
            except SystemExit as stop:
                open(sys.argv[1], "w").write(f"exit {stop.code}")
                raise
            time.sleep(600)  # an orphan left running

        if __name__ == "__main__":
            multiprocessing.get_context("fork").Process(target=worker, args=(os.getpid(),)).start()
            os._exit(0)  # gone before the worker arms its death signal
    """, marker)
    assert result.returncode == 0, result.stderr
    assert processes_left(marker, timeout=GONE_SECONDS) == []
    assert Path(marker).read_text() == "exit 130"  # it saw for itself, and stopped as a signal stops it
