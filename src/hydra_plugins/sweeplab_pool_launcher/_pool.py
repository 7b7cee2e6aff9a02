"""Run a sweep's jobs on worker processes that stay alive between jobs.

Hydra's joblib launcher cannot be made to do this: its loky workers are fresh interpreters that
import torch again, and it pickles the task, config and Hydra's global state (``Singleton.get_state()``)
for every job. Here the workers are forked from the launching process at the sweep's first launch,
so they inherit all of that as it is, and each job's config is composed in the worker, as
hydra_joblib_launcher's ``execute_job`` does. A worker runs one job at a time through Hydra's
``run_job``, exactly as the basic launcher does (its own job dir, ``.hydra/``, job log, the return
value, or the exception in a failed JobReturn), and keeps what the job left in the process: torch
imported, the dataset loaded (:func:`sweeplab.training.data.load_splits`).

The parent hands the next job to whichever worker is free (no batch barrier) and returns the
JobReturns in job order. A worker that dies (killed, out of memory) fails only the job it held and
is replaced. Ctrl-C or SIGTERM stops every worker the way Ctrl-C stops a job (``interrupted`` in
its metrics.json) and ends the sweep.

Forking needs a parent whose torch has not yet run multi-threaded work (GNU OpenMP's thread pool
does not survive a fork): ``python train.py -m`` never runs torch in the launching process, which only
imports it before the first fork (:func:`sweeplab.job.workers.preload`), so the workers inherit it.
"""
from __future__ import annotations

import logging
import multiprocessing
import os
import pickle
import sys
from collections import deque
from dataclasses import dataclass
from multiprocessing import util
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Callable, Optional, Sequence

from hydra.core.utils import JobReturn, JobStatus, configure_log, filter_overrides, run_job, setup_globals
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, open_dict

from sweeplab.errors import ConfigError
from sweeplab.job.interrupts import sigterm_as_keyboard_interrupt
from sweeplab.job.workers import INTERRUPTED, STOP_SECONDS, become_worker, preload, usable_cores

log = logging.getLogger(__name__)

Job = tuple[int, list[str]]  # (job number, overrides)
STOP = None  # sent to a worker instead of a job: exit
# A signal may be delivered to any thread of a process (torch's, Optuna's heartbeat), and Python runs its
# handler only when the main thread next runs bytecode: a main thread blocked waiting for a pipe would
# not stop until a job ends. So the waits below wake up this often.
WAKE_SECONDS = 0.5


class PoolLauncherImpl:
    def __init__(self, n_workers: Optional[int]) -> None:
        self.n_workers = usable_cores() if n_workers is None else n_workers
        self.workers: list[Worker] = []
        self.stops_at_exit_of: Optional[int] = None  # the process whose exit stops the workers

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        # checked here, not in __init__: Hydra prints an error raised here as its message alone
        if self.n_workers < 1:
            raise ConfigError(f"hydra.launcher.n_workers={self.n_workers}: must be an integer >= 1, "
                              "or null for one per CPU core")
        stop_workers(self.workers)  # workers forked for another config would run its jobs
        self.config = config
        self.runner = JobRunner(hydra_context, task_function, config, self.n_workers)

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> list[JobReturn]:
        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        threads = max(1, usable_cores() // self.n_workers)
        log.info("Launching %d jobs on %d worker processes (%d torch thread(s) each)",
                 len(job_overrides), self.n_workers, threads)
        jobs = [(initial_job_idx + i, list(overrides)) for i, overrides in enumerate(job_overrides)]
        for idx, overrides in jobs:
            log.info("\t#%d : %s", idx, " ".join(filter_overrides(overrides)))

        try:
            with sigterm_as_keyboard_interrupt():  # `kill PID` stops like Ctrl-C
                return self._run(jobs)
        except KeyboardInterrupt:
            stop_workers(self.workers, interrupt=True)
            raise

    def _run(self, jobs: list[Job]) -> list[JobReturn]:
        """Each job on the next free worker; the JobReturns in job order."""
        waiting, results = deque(jobs), {}
        while waiting or any(worker.job for worker in self.workers):
            for worker in self._idle_workers(len(waiting)):
                worker.start(waiting.popleft())
            busy = [worker for worker in self.workers if worker.job]
            ready = wait([w.connection for w in busy] + [w.process.sentinel for w in busy], WAKE_SECONDS)
            for worker in busy:
                if worker.connection in ready or worker.process.sentinel in ready:
                    idx, result = worker.result()
                    results[idx] = result
                    if not worker.process.is_alive():
                        self.workers.remove(worker)
        return [results[idx] for idx, _ in jobs]

    def _idle_workers(self, wanted: int) -> list[Worker]:
        """Up to ``wanted`` idle workers, forking new ones while there are fewer than n_workers."""
        for worker in [w for w in self.workers if not w.job and not w.process.is_alive()]:
            self.workers.remove(worker)  # died between jobs
        idle = [worker for worker in self.workers if not worker.job][:wanted]
        if len(idle) < wanted:
            self._stop_workers_at_exit()
        if len(idle) < wanted:
            preload(self.runner.task_function)  # once imported here, every worker inherits it
        while len(idle) < wanted and len(self.workers) < self.n_workers:
            # a replaced worker's number is free again: the new one takes its GPU
            index = min(set(range(self.n_workers)) - {worker.index for worker in self.workers})
            worker = Worker(self.runner.serve, index)
            self.workers.append(worker)
            idle.append(worker)
        return idle

    def _stop_workers_at_exit(self) -> None:
        """The workers end with the sweep: when Hydra drops this launcher, or when the process that forked
        them exits. That process may itself be a forked worker (an Optuna sweeper's), whose exit runs no
        ``atexit`` hook but multiprocessing's own exit handler, which joins every child: a worker still
        waiting for its next job would keep it waiting for ever. A multiprocessing ``Finalize`` with an
        exit priority runs before that join, in the main process and in forked ones alike."""
        if self.stops_at_exit_of != os.getpid():
            self.stops_at_exit_of = os.getpid()
            util.Finalize(self, stop_workers, args=(self.workers,), exitpriority=0)


@dataclass
class JobRunner:
    """A worker's side: what it needs to run jobs, inherited through the fork. Kept apart from the
    launcher, so the worker processes hold no reference to it and it ends them when it is dropped."""

    hydra_context: HydraContext
    task_function: TaskFunction
    config: DictConfig
    n_workers: int

    def serve(self, connection: Connection, index: int) -> None:
        """Worker ``index``'s life: take its share of the cores and GPUs, then run jobs until told to stop."""
        become_worker(self.n_workers, index)
        try:
            while (job := next_job(connection)) is not STOP:
                connection.send_bytes(self.run_one(*job))
        except (KeyboardInterrupt, EOFError):
            sys.exit(INTERRUPTED)

    def run_one(self, idx: int, overrides: list[str]) -> bytes:
        """One job as the basic launcher runs it; its pickled JobReturn."""
        try:
            sweep_config = self.hydra_context.config_loader.load_sweep_config(self.config, overrides)
        except Exception as exc:  # Hydra's sweepers compose every job before launching; just in case
            return portable(JobReturn(overrides=overrides, status=JobStatus.FAILED, _return_value=exc))
        with open_dict(sweep_config):
            sweep_config.hydra.job.id = idx
            sweep_config.hydra.job.num = idx
        result = run_job(hydra_context=self.hydra_context, task_function=self.task_function,
                         config=sweep_config, job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir")
        return portable(result)


class Worker:
    """A forked process and the parent's end of its pipe; ``job`` is what it runs now (None: idle)."""

    def __init__(self, serve: Callable[[Connection, int], None], index: int) -> None:
        self.index = index
        self.connection, child_end = multiprocessing.Pipe()
        self.process = multiprocessing.get_context("fork").Process(target=serve, args=(child_end, index),
                                                                   name=f"pool-worker-{index}")
        self.process.start()
        child_end.close()  # so a dead worker reads as EOF here, and later forks do not inherit it
        self.job: Optional[Job] = None

    def start(self, job: Job) -> None:
        self.job = job
        self.connection.send(job)

    def result(self) -> tuple[int, JobReturn]:
        """The finished job's number and JobReturn; a failed one if the process died running it."""
        idx, overrides = self.job
        self.job = None
        try:
            return idx, pickle.loads(self.connection.recv_bytes())
        except (EOFError, OSError):  # it died before or while sending its result
            self.process.join()
            error = RuntimeError(f"job #{idx}: its worker process (pid {self.process.pid}) ended with exit code "
                                 f"{self.process.exitcode} while running it")
            return idx, JobReturn(overrides=overrides, status=JobStatus.FAILED, _return_value=error)


def next_job(connection: Connection) -> Optional[Job]:
    """A worker's next job from the parent (or STOP), waking every WAKE_SECONDS to handle a signal."""
    while not connection.poll(WAKE_SECONDS):
        pass
    return connection.recv()


def portable(result: JobReturn) -> bytes:
    """``result`` pickled for the trip to the parent. A return value or exception that cannot make the
    trip (an unpicklable object, an exception class that cannot be rebuilt) becomes a failure naming it."""
    try:
        data = pickle.dumps(result)
        pickle.loads(data)
        return data
    except Exception as exc:
        result.status = JobStatus.FAILED
        result.return_value = RuntimeError(
            f"the job's result ({type(result._return_value).__name__}: {result._return_value}) cannot be "
            f"sent from its worker process: {type(exc).__name__}: {exc}"
        )
        return pickle.dumps(result)


def stop_workers(workers: list[Worker], interrupt: bool = False) -> None:
    """End the workers: idle ones are told to exit; with ``interrupt``, running jobs are stopped as
    Ctrl-C stops them (they record ``interrupted``). Empties ``workers``."""
    for worker in workers:
        if interrupt and worker.process.is_alive():
            worker.process.terminate()  # SIGTERM: the worker's handler raises KeyboardInterrupt
        else:
            try:
                worker.connection.send(STOP)
            except OSError:
                pass  # already gone
    for worker in workers:
        worker.process.join(STOP_SECONDS)
        if worker.process.is_alive():
            worker.process.kill()
            worker.process.join()
        worker.connection.close()
    workers.clear()
