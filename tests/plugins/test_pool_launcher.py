"""hydra/launcher=pool: jobs on worker processes that stay alive between jobs.

The launcher's mechanics are tested in-process with Hydra's sweep runner and a trivial task (no
torch, milliseconds per job); one end-to-end run of train.py checks the real task against the basic
launcher.
"""
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

import sweeplab.job.task
from conftest import REPO, TINY, processes_left, run_train, train_env
from sweeplab.jobfiles import read_metrics


def task(cfg: DictConfig) -> int:
    """Writes its pid into its job dir, unless told to fail; job ``wait_at`` first waits until every
    other job of the sweep (``n_jobs`` in all) has written its pid."""
    job_dir = Path(HydraConfig.get().runtime.output_dir)
    if cfg.x == cfg.get("raise_at"):
        raise ValueError(f"x={cfg.x} is bad")
    if cfg.x == cfg.get("die_at"):
        os.kill(os.getpid(), signal.SIGKILL)
    if cfg.x == cfg.get("unpicklable_at"):
        raise TwoArgumentError("a", "b")
    if cfg.x == cfg.get("wait_at"):
        deadline = time.time() + 60
        while len(list(job_dir.parent.glob("*/pid"))) < cfg.n_jobs - 1:
            if time.time() > deadline:
                raise TimeoutError("the other jobs did not run while this one waited")
            time.sleep(0.01)
    (job_dir / "pid").write_text(str(os.getpid()))
    return cfg.x


class TwoArgumentError(Exception):
    """Pickles, but cannot be rebuilt from its args: unpickling it raises TypeError."""

    def __init__(self, first: str, second: str):
        super().__init__(f"{first} and {second}")


def sweep(runner, tmp_path: Path, *overrides: str) -> tuple[list, list[int | None]]:
    """The sweep's JobReturns and each job's worker pid (None: the job wrote none). The runner deletes
    the sweep dir when a sweep succeeds, so the pids are read inside; when it raises, they stay there."""
    jobs = range(len(overrides[0].split(",")))  # the first override sweeps x
    with runner(calling_file=__file__, calling_module=None, task_function=task, config_path=None,
                config_name=None, overrides=["hydra/launcher=pool", "hydra.launcher.n_workers=2", *overrides],
                temp_dir=tmp_path) as result:
        return result.returns, pids(tmp_path, jobs)


def pids(tmp_path: Path, jobs: range) -> list[int | None]:
    return [int((tmp_path / str(job) / "pid").read_text()) if (tmp_path / str(job) / "pid").exists() else None
            for job in jobs]


def test_jobs_run_on_two_reused_workers_and_return_in_job_order(hydra_sweep_runner, tmp_path):
    # job 0 waits for the three others, so the second worker runs them all meanwhile: no batch barrier
    (batch,), workers = sweep(hydra_sweep_runner, tmp_path, "+x=0,1,2,3", "+wait_at=0", "+n_jobs=4")
    assert [job.return_value for job in batch] == [0, 1, 2, 3]
    assert [job.overrides[0] for job in batch] == ["+x=0", "+x=1", "+x=2", "+x=3"]
    assert len(set(workers)) == 2 and os.getpid() not in workers
    assert workers[1] == workers[2] == workers[3] != workers[0]
    assert not any(Path(f"/proc/{pid}").exists() for pid in workers), "the workers outlived the sweep"


def test_a_failing_job_does_not_stop_the_others(hydra_sweep_runner, tmp_path):
    with pytest.raises(ValueError, match="x=2 is bad"):  # the sweeper raises a failed job's error at the end
        sweep(hydra_sweep_runner, tmp_path, "+x=1,2,3,4", "+raise_at=2")
    assert [pid is not None for pid in pids(tmp_path, range(4))] == [True, False, True, True]


def test_a_killed_worker_fails_its_job_alone_and_is_replaced(hydra_sweep_runner, tmp_path):
    with pytest.raises(RuntimeError, match=r"job #1: its worker process \(pid \d+\) ended with exit code -9"):
        sweep(hydra_sweep_runner, tmp_path, "+x=0,1,2,3,4", "+die_at=1")
    workers = pids(tmp_path, range(5))
    assert workers[1] is None and all(workers[job] for job in (0, 2, 3, 4))


def test_an_exception_that_cannot_travel_back_is_reported_by_name(hydra_sweep_runner, tmp_path):
    with pytest.raises(RuntimeError, match=r"TwoArgumentError: a and b\) cannot be sent from its worker"):
        sweep(hydra_sweep_runner, tmp_path, "+x=0,1", "+unpicklable_at=1")
    assert pids(tmp_path, range(2))[0] is not None


def test_n_workers_below_one_is_refused(tmp_path, train_cli):
    result = train_cli("-m", "hydra/launcher=pool", "hydra.launcher.n_workers=0", "seed=0,1", *TINY, cwd=tmp_path)
    assert result.returncode == 1
    assert "hydra.launcher.n_workers=0: must be an integer >= 1, or null for one per CPU core" in result.stderr
    assert not (tmp_path / "outputs" / "sweeps").exists()


@pytest.mark.slow
def test_a_grid_on_the_pool_matches_the_basic_launcher(hydra_sweep_runner, tmp_path, keep_torch_threads):
    """Same histories as the basic launcher; each worker loads the data once; a bad value fails alone.
    Both use one torch thread: a matmul split over more threads sums in another order."""
    pool = run_train("-m", "hydra/launcher=pool", "hydra.launcher.n_workers=2", "lr=0.1,0.05,-1", "seed=0,1",
                     "threads=1", *TINY, "hydra.sweep.dir=pool", cwd=tmp_path,
                     env=train_env(PYTHONPROFILEIMPORTTIME="1"))  # each process lists what it imports
    assert pool.returncode == 1  # the two lr=-1 jobs failed, after every job ran
    # torch is imported once, by the launching process before it forks: the workers inherit it
    assert len(re.findall(r"^import time:.*\|\s+torch$", pool.stderr, re.M)) == 1
    # 6 jobs, 2 workers: one load each
    assert pool.stdout.count("data: sweeplab.training.data.synthetic_images loaded in") == 2
    reused = "data: sweeplab.training.data.synthetic_images, already in memory in this process"
    assert pool.stdout.count(reused) == 2  # the other valid jobs
    for failed_job in "45":
        metrics = read_metrics(tmp_path / "pool" / failed_job)
        assert metrics["status"] == "failed" and "lr=-1.0: must be a number > 0" in metrics["reason"]

    # the basic launcher, in this process; jobs 0-3 are (lr, seed) = (0.1, 0), (0.1, 1), (0.05, 0), (0.05, 1) in both
    overrides = ["lr=0.1,0.05", "seed=0,1", "threads=1", *TINY]
    with hydra_sweep_runner(calling_file=str(REPO / "train.py"), calling_module=None,
                            task_function=sweeplab.job.task.main, config_path="conf", config_name="train",
                            overrides=overrides, temp_dir=tmp_path / "basic"):
        for job in "0123":
            expected = pd.read_csv(tmp_path / "basic" / job / "history.csv").drop(columns="seconds")
            actual = pd.read_csv(tmp_path / "pool" / job / "history.csv").drop(columns="seconds")
            pd.testing.assert_frame_equal(actual, expected, check_exact=True)
            pool_metrics, basic_metrics = (read_metrics(tmp_path / launcher / job) for launcher in ("pool", "basic"))
            assert without_time(pool_metrics) == without_time(basic_metrics)


def without_time(metrics: dict) -> dict:
    return {key: value for key, value in metrics.items() if key != "wall_seconds"}


@pytest.fixture
def keep_torch_threads():
    """The in-process jobs set torch's thread count for this whole test process: put it back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.mark.slow
def test_sigterm_records_running_jobs_as_interrupted_and_stops_every_worker(tmp_path):
    sweep_dir = tmp_path / "sweep"
    marker = f"hydra.sweep.dir={sweep_dir}"  # also on the forked workers' command line
    proc = subprocess.Popen([sys.executable, str(REPO / "train.py"), "-m", "hydra/launcher=pool",
                             "hydra.launcher.n_workers=2", "seed=0,1,2", *TINY, "epochs=1000", marker],
                            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    histories = [sweep_dir / job / "history.csv" for job in "01"]
    deadline = time.time() + 120
    while not all(history.exists() for history in histories):  # both workers are training
        assert proc.poll() is None and time.time() < deadline
        time.sleep(0.05)
    proc.terminate()
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert [read_metrics(sweep_dir / job)["status"] for job in "01"] == ["interrupted", "interrupted"], stderr
    assert not (sweep_dir / "2").exists()  # never started
    assert processes_left(marker) == []
