"""The Optuna sweeper: open the study, run workers that each take their next trial as soon as their
last one ends, one Hydra job per trial, results written as the study grows and at its end.

Workers are Optuna's own distributed mode: processes that share one storage. Locally they are
``n_workers`` forked processes, each handing its jobs to the launcher (the basic one runs them in
the worker itself); with joblib or submitit, which run jobs in processes of their own, they are
threads of this process, one job each, as many as the launcher runs at once; on other machines,
the same command started against the same storage URL. Each job reaches its trial through the
storage (``sweeplab.job.trial``), so it reports and is pruned wherever it runs. The budget ``n_trials``
is the study's total, counted from the storage, so a rerun resumes and several machines share one
budget.
"""
from __future__ import annotations

import functools
import json
import logging
import math
import multiprocessing
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, List, Optional

import optuna
from hydra.core.plugins import Plugins
from hydra.core.utils import JobReturn, JobStatus
from hydra.errors import ConfigCompositionException
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, ListConfig, OmegaConf, read_write
from optuna.trial import FrozenTrial, TrialState

import sweeplab.job.trial
from sweeplab.job.interrupts import raise_keyboard_interrupt
from sweeplab.job.trial import FAIL_REASON, JOB_DIR
from sweeplab.job.workers import become_worker, preload
from sweeplab.jobfiles import end_a_job_left_running
from sweeplab.sweep.launchers import runs_jobs_concurrently
from sweeplab.sweep.sweep_lock import hold_study_dir

from ._build import GRID_SAMPLER, build_pruner, build_sampler, class_name
from ._fused_trials import run_trials
from ._sampler import SeededPerTrial
from ._search_space import (
    SearchSpaceError,
    check_group_choices,
    distributions_from_dicts,
    grid,
    load_custom_search_space,
    parse_search_space,
    suggest,
)
from ._study import (
    NO_ROOM,
    SKIPPED,
    StudyError,
    Tally,
    beat_once_for_the_silent,
    check_spec,
    close_storage,
    commit_to_wal,
    describe_storage,
    duplicate_retry,
    experimental_allowed,
    has_password,
    leave_wal,
    max_failures,
    open_storage,
    results_due,
    retry_next_interrupted,
    spec_of,
    standing,
    storage_errors,
    trial_line,
    write_results,
)
from ._told_from_files import tell_finished_jobs
from ._turn import AskingTurn

log = logging.getLogger(__name__)

DIRECTIONS = ("maximize", "minimize")
# samplers whose seed must be the same in every process: the grid's shuffles the order of its points,
# QMC's scrambles its sequence; both take their place (point, sequence index) from the storage
SHARED_SEED_SAMPLERS = (GRID_SAMPLER, "optuna.samplers.QMCSampler")
LOCK_FILE = ".optuna.lock"  # in the sweep dir: local workers take turns to count and ask
STORAGE_KEY = "hydra.sweeper.storage"
POLL_SECONDS = 1.0  # how often a worker with nothing to do checks whether a running trial ended
# worker process exit codes
DONE, TOO_MANY_FAILURES, STUDY_ERROR, INTERRUPTED = 0, 3, 4, 130


class OptunaSweeperImpl(Sweeper):
    def __init__(
        self,
        sampler: DictConfig,
        pruner: Optional[DictConfig],
        direction: Any,
        study_name: Optional[str],
        storage: Optional[str | DictConfig],
        n_trials: int,
        n_jobs: Optional[int],
        n_workers: int,
        max_failure_rate: float,
        params: Optional[DictConfig],
        search_space: Optional[DictConfig],
        custom_search_space: Optional[str],
        default_params: Optional[DictConfig],
        heartbeat_interval: int,
        grace_period: int,
        fuse: int = 1,
    ) -> None:
        self.directions = list(direction) if isinstance(direction, (list, ListConfig)) else [direction]
        if n_jobs is not None and n_workers not in (1, n_jobs):
            raise StudyError(f"hydra.sweeper.n_jobs={n_jobs} and n_workers={n_workers}: give one of them "
                             "(both are the number of trials run at the same time)")
        n_workers = n_workers if n_jobs is None else n_jobs
        checks = [
            ("direction", direction, all(d in DIRECTIONS for d in self.directions),
             "maximize or minimize, or a list of them"),
            ("n_trials", n_trials, n_trials >= 1, "an integer >= 1"),
            ("n_workers", n_workers, n_workers >= 1, "an integer >= 1"),
            ("max_failure_rate", max_failure_rate, 0 <= max_failure_rate <= 1, "a number in [0, 1]"),
            ("heartbeat_interval", heartbeat_interval, heartbeat_interval >= 1, "an integer >= 1 (seconds)"),
            ("grace_period", grace_period, grace_period > heartbeat_interval, "more seconds than heartbeat_interval"),
            ("fuse", fuse, fuse >= 1, "an integer >= 1 (trials a worker trains at once)"),
        ]
        for key, value, ok, allowed in checks:
            if not ok:
                raise StudyError(f"hydra.sweeper.{key}={value}: must be {allowed}")
        self.sampler_cfg, self.pruner_cfg = sampler, pruner
        self.study_name, self.storage_spec = study_name, storage
        self.n_trials, self.n_workers = n_trials, n_workers
        self.max_failure_rate, self.params, self.default_params = max_failure_rate, params, default_params
        self.search_space = distributions_from_dicts(search_space or {})
        if self.search_space and params:
            log.warning("both hydra.sweeper.params and hydra.sweeper.search_space are given: using params")
            self.search_space = {}
        self.custom_search_space_path = custom_search_space
        self.heartbeat_interval, self.grace_period = heartbeat_interval, grace_period
        self.fuse = fuse
        self.fused_launcher = None  # with fuse and the basic launcher: made at the first batch
        self.results_written = 0  # finished trials at this worker's last rewrite of the results files

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config = config
        self.hydra_context = hydra_context
        self.task_function = task_function
        self.launcher = Plugins.instance().instantiate_launcher(
            config=config, hydra_context=hydra_context, task_function=task_function
        )
        self.sweep_dir = Path(config.hydra.sweep.dir).absolute()
        self.storage = self.storage_spec or f"sqlite:///{self.sweep_dir / 'optuna.db'}"
        self.url = describe_storage(self.storage)

    # ------------------------------------------------------------ the main process

    def sweep(self, arguments: List[str]) -> None:
        # one sweep per dir; a full disk or a lost database ends it in one line, whichever call met it
        with hold_study_dir(self.sweep_dir, self.storage_spec, self.study_name), storage_errors(self.storage):
            self._sweep(arguments)

    def _sweep(self, arguments: List[str]) -> None:
        optuna.logging.set_verbosity(optuna.logging.ERROR)  # we log the study and each trial ourselves
        self.space = parse_search_space(as_overrides(self.params) + list(arguments), base=self.search_space)
        self.custom_search_space = (load_custom_search_space(self.custom_search_space_path)
                                    if self.custom_search_space_path else None)
        if not self.space.distributions and self.default_params:
            # the file's and the command line's fixed values still apply, and take keys out of the default space
            log.info("no search space given: searching hydra.sweeper.default_params")
            self.space = parse_search_space(
                as_overrides(self.default_params) + as_overrides(self.params) + list(arguments))
        if not self.space.distributions and not self.custom_search_space:
            raise SearchSpaceError("search space is empty: give hydra.sweeper.params or sweep syntax such as "
                                   "lr='tag(log, interval(1e-4, 1e-1))'")
        check_group_choices(self.space, self.hydra_context.config_loader.get_group_options)
        if self.sampler_cfg._target_ != GRID_SAMPLER:
            for difference in self.space.official_differences.values():
                log.warning("search space: %s", difference)
        self.grid = None
        if self.sampler_cfg._target_ == GRID_SAMPLER:
            self.grid = grid(self.space)
            size = math.prod(len(values) for values in self.grid.values())
            if size < self.n_trials:
                log.info("grid sampler: %d combinations, so n_trials %d -> %d", size, self.n_trials, size)
                self.n_trials = size
        self.sweep_dir.mkdir(parents=True, exist_ok=True)
        if self.study_name is None:
            self.study_name = self.config.hydra.job.name
            log.info("study_name null: named '%s' after the app (hydra.job.name)", self.study_name)
        if has_password(self.storage):
            storage_by_reference(self.config)
        storage = self._open_storage()
        try:
            self._find_resume_point(storage)
            if self.storage_spec is None:
                log.info("storage null: using %s; to resume, %s", self.url, self.resume_by)
            study = optuna.create_study(study_name=self.study_name, storage=storage,
                                        directions=self.directions, load_if_exists=True)
            check_spec(study, spec_of(self.space, self.directions), self.url)
            self._log_start(study)
        finally:
            close_storage(storage)  # forked workers open their own connections

        self.stopping = threading.Event()  # set on Ctrl-C or SIGTERM: worker threads take no new trial
        previous = signal.signal(signal.SIGTERM, raise_keyboard_interrupt)  # `kill PID` stops as cleanly as Ctrl-C
        pruner = None if self.pruner_cfg is None else OmegaConf.to_container(self.pruner_cfg, resolve=True)
        try:
            with sweeplab.job.trial.study_environment(self._storage_for_jobs(), self.study_name, pruner):
                outcome = self._run()
        except KeyboardInterrupt:
            outcome = INTERRUPTED
        finally:
            signal.signal(signal.SIGTERM, previous)

        storage = self._open_storage()
        study = optuna.load_study(study_name=self.study_name, storage=storage)
        unwritten = self._write_results(study)
        self._log_end(study)
        done = Tally.of(study.get_trials(deepcopy=False)).finished >= self.n_trials
        leave_wal(storage)
        close_storage(storage)
        if done:  # whatever stopped the workers, the budget is spent: the summary above says how it went
            if outcome != DONE:
                log.info("the study is done: all n_trials=%d trials finished", self.n_trials)
            if unwritten:
                raise StudyError(f"the study is done, but {unwritten}")
            return
        if outcome == TOO_MANY_FAILURES:
            raise StudyError(self._too_many_failures(study))
        reason = "interrupted" if outcome == INTERRUPTED else f"a worker process ended with exit code {outcome}"
        raise StudyError(f"{reason}. Finished trials are kept in {self.url}: to resume the study, {self.resume_by}.")

    def _find_resume_point(self, storage: optuna.storages.BaseStorage) -> None:
        """Set how a rerun finds this study again: the same command, unless the study's name is made
        afresh by each run (train.py's default, ``${now:...}``). Such a study resumes by its sweep dir: a
        rerun into a dir whose own storage holds a study takes that study, whatever its name."""
        self.resume_by = "rerun the same command"
        if not OmegaConf.is_interpolation(self.config.hydra.sweeper, "study_name"):
            return
        if self.storage_spec is not None:  # a shared database: the study is found by its name
            self.resume_by += f" with hydra.sweeper.study_name={self.study_name}"
            return
        studies = storage.get_all_studies()
        if len(studies) == 1:
            self.study_name = studies[0].study_name
        self.resume_by += f" with hydra.sweep.dir={self.sweep_dir}"

    def _run(self) -> int:
        """Run the workers this launcher calls for; their outcome."""
        if runs_jobs_concurrently(self.config):
            return self._run_threads(self._in_flight())
        if self.n_workers > 1:
            return self._run_workers()
        return self._work()

    def _launcher_target(self) -> str:
        return str(OmegaConf.select(self.config, "hydra.launcher._target_"))

    def _in_flight(self) -> int:
        """How many trials to keep running through joblib or submitit: n_workers if set, else as
        many jobs as the launcher runs at once (joblib's n_jobs, submitit's array_parallelism),
        never more than n_trials."""
        if self.n_workers > 1:
            return min(self.n_workers, self.n_trials)
        launcher = self.config.hydra.launcher
        parallelism = launcher.get("n_jobs", launcher.get("array_parallelism", 1))
        cores = os.cpu_count() or 1
        if parallelism is None or parallelism < 0:  # joblib: -1 is every core, -2 all but one, ...
            parallelism = cores + 1 + (parallelism or -1)
        return max(1, min(int(parallelism), self.n_trials))

    def _run_threads(self, count: int) -> int:
        """``count`` worker threads, each keeping one job in flight through the launcher."""
        log.info("%s: %d trial(s) in flight", self._launcher_target().rsplit(".", 1)[-1], count)
        codes: list[int] = []
        errors: list[BaseException] = []

        def work() -> None:
            try:
                codes.append(self._work())
            except BaseException as exc:  # raised again in the main thread, once the others stopped
                errors.append(exc)
                self.stopping.set()

        threads = [threading.Thread(target=work, name=f"optuna-worker-{index}", daemon=True) for index in range(count)]
        for thread in threads:
            thread.start()
        try:
            for thread in threads:
                thread.join()
        except KeyboardInterrupt:
            self.stopping.set()
            log.warning("stopping: no new trials; waiting for the running jobs (interrupt again to leave them)")
            for thread in threads:
                thread.join()
            return INTERRUPTED
        if errors:
            raise errors[0]
        return next((code for code in (TOO_MANY_FAILURES, INTERRUPTED) if code in codes), DONE)

    def _run_workers(self) -> int:
        """Fork the local workers (torch imported, none of its work run, the storage not opened). A worker's
        StudyError (its storage failed) comes back here, to end the sweep with its one line."""
        preload(self.task_function)  # imported once here, inherited by every worker
        context = multiprocessing.get_context("fork")
        self.worker_errors = context.SimpleQueue()
        workers = [context.Process(target=self._worker_main, args=(index,), name=f"optuna-worker-{index}")
                   for index in range(self.n_workers)]
        for worker in workers:
            worker.start()
        try:
            for worker in workers:
                worker.join()
        except KeyboardInterrupt:
            # Ctrl-C in a terminal reaches the workers too, `kill PID` only this process: tell them
            # (a worker stops once, whichever signal comes first)
            for worker in workers:
                if worker.is_alive():
                    os.kill(worker.pid, signal.SIGTERM)
            for worker in workers:
                worker.join()
            return INTERRUPTED
        error = None if self.worker_errors.empty() else self.worker_errors.get()
        self.worker_errors.close()
        if error is not None:
            raise StudyError(error)
        codes = [worker.exitcode for worker in workers]
        for code in (INTERRUPTED, TOO_MANY_FAILURES):
            if code in codes:
                return code
        # a worker killed or crashed (see its output above): the sweep says whether anything is left
        return next((code for code in codes if code), DONE)

    def _worker_main(self, index: int) -> None:
        """Forked worker ``index``: share the cores and GPUs, die with the main process, run trials, exit
        with the outcome."""
        become_worker(self.n_workers, index)
        try:
            with storage_errors(self.storage):
                code = self._work()
        except KeyboardInterrupt:
            code = INTERRUPTED
        except StudyError as exc:
            self.worker_errors.put(str(exc))
            code = STUDY_ERROR
        sys.exit(code)

    # ------------------------------------------------------------ a worker

    def _work(self) -> int:
        """Take trials until the study has n_trials finished ones (or too many failures)."""
        storage = self._open_storage()
        study = optuna.load_study(study_name=self.study_name, storage=storage, sampler=self._sampler(),
                                  pruner=build_pruner(self.pruner_cfg))
        turn = AskingTurn(self.sweep_dir / LOCK_FILE)
        seen: set[int] = set()  # RUNNING trials this worker gave a heartbeat (beat_once_for_the_silent)
        try:
            while not self.stopping.is_set():
                # local workers count and ask one at a time, so two of them never take the last place
                turn.take()
                try:
                    with experimental_allowed():
                        tell_finished_jobs(study, storage)  # a killed worker's finished jobs: not run again
                        optuna.storages.fail_stale_trials(study)
                    beat_once_for_the_silent(study, storage, self.grace_period, seen)
                    tally = Tally.of(study.get_trials(deepcopy=False))
                    if tally.finished >= self.n_trials:
                        return DONE
                    if tally.failed > max_failures(self.n_trials, self.max_failure_rate):
                        return TOO_MANY_FAILURES
                    room = self.n_trials - tally.finished - tally.running
                    wait = room <= 0
                    if not wait:
                        retry_next_interrupted(study, min(self.fuse, room))  # their params run again, next
                    if not wait and self.fuse > 1:
                        run_trials(self, study, min(self.fuse, room), turn)
                    elif not wait:
                        # one trial: Optuna's ask(), then _objective, then tell(), with its heartbeat
                        study.optimize(functools.partial(self._objective, turn=turn), n_trials=1,
                                       callbacks=[lambda study, trial: self._after_trials(study, [trial])])
                finally:
                    turn.give_back()
                if wait:
                    time.sleep(POLL_SECONDS)  # the rest is running elsewhere; it may finish or go stale
            return INTERRUPTED
        finally:
            turn.close()
            close_storage(storage)

    def _sampler(self) -> optuna.samplers.BaseSampler:
        """This worker's sampler: with a seed, each trial draws from (seed, trial number)."""
        seed = self.sampler_cfg.get("seed")
        if seed is None or self.sampler_cfg._target_ in SHARED_SEED_SAMPLERS:
            return build_sampler(self.sampler_cfg, seed, self.grid)
        return SeededPerTrial(lambda trial_seed: build_sampler(self.sampler_cfg, trial_seed, self.grid), seed)

    def _storage_for_jobs(self) -> str:
        """The storage as a job opens it: its URL, or its ``_target_`` node as JSON."""
        if isinstance(self.storage, str):
            return self.storage
        return json.dumps(OmegaConf.to_container(self.storage, resolve=True))

    def _objective(self, trial: optuna.Trial, turn: AskingTurn) -> Any:
        """Run the trial's job through the launcher; the job's return value (or TrialPruned) is the outcome."""
        turn.give_back()  # the trial is asked: let the next local worker count
        trials = trial.study.get_trials(deepcopy=False)
        tally = Tally.of([t for t in trials if t.number < trial.number])
        if tally.finished + tally.running >= self.n_trials:
            # a worker on another machine asked at the same moment and took the last place first
            trial.set_user_attr(SKIPPED, "asked after the study's n_trials were taken")
            return self._nan()
        if duplicate_retry(trials, trial.number):
            trial.set_user_attr(SKIPPED, "another worker retries the same interrupted trial")
            return self._nan()
        # job number = trial number: the job finds its trial by it (sweeplab.job.trial)
        try:
            (job,) = self.launcher.launch([self._job_overrides(trial)], initial_job_idx=trial.number)
        except ConfigCompositionException as exc:  # its params make no config: a failed trial, not a retry
            return self._fail(trial, f"cannot compose its config: {exc}")
        except OSError as exc:
            if exc.errno not in NO_ROOM:
                raise
            return self._launch_failed(trial, exc)
        return self._outcome(trial, job)

    def _job_overrides(self, trial: optuna.Trial) -> list[str]:
        """The trial's sampled params and the fixed values, as the overrides of its job."""
        for key, dist in self.space.distributions.items():
            suggest(trial, key, dist)  # a retried trial keeps its params
        for key, value in self.space.fixed.items():  # as hydra-optuna-sweeper stores them
            trial.set_user_attr(key, value)
        if self.custom_search_space:
            self.custom_search_space(self.config, trial)
            clash = sorted(set(trial.params) & set(self.space.fixed))
            if clash:
                raise StudyError(f"hydra.sweeper.custom_search_space suggested {clash}, which the overrides fix")
        return self.space.job_overrides(trial.params)

    def _after_trials(self, study: optuna.Study, told: list[FrozenTrial]) -> None:
        """Log a line for each trial just told (a fused batch's, or one), and rewrite the results files when
        they are due: the study's trials are read once for all of them."""
        tally = Tally.of(study.get_trials(deepcopy=False))
        if results_due(tally.finished, self.results_written) and self._write_results(study) is None:
            self.results_written = tally.finished
        line_end = standing(study, tally, self.n_trials)
        for trial in told:
            if SKIPPED not in trial.user_attrs:
                log.info(trial_line(trial, line_end))

    def _write_results(self, study: optuna.Study) -> Optional[str]:
        """Rewrite the results files; on a full disk, say which file could not be written, in one line (also
        returned): every trial is kept in the storage, and the files are rewritten after the next trial."""
        try:
            write_results(study, self.sweep_dir, self.url, self.n_trials)
        except OSError as exc:
            unwritten = f"cannot write {exc.filename}: {exc.strerror} (every trial is kept in {self.url})"
            log.error(unwritten)
            return unwritten
        return None

    def _outcome(self, trial: optuna.Trial, job: JobReturn) -> Any:
        """What the job says: its return value, TrialPruned, or the error it raised."""
        output_dir = OmegaConf.select(job.hydra_cfg, "hydra.runtime.output_dir") if job.hydra_cfg else None
        if output_dir and trial.user_attrs.get(JOB_DIR) != str(output_dir):  # a job run here has set it
            trial.set_user_attr(JOB_DIR, str(output_dir))
        if job.status == JobStatus.FAILED and isinstance(job._return_value, optuna.TrialPruned):
            raise job._return_value  # (not through `return_value`, which prints it as an error)
        pruned = sweeplab.job.trial.pruned_here(trial.number)  # a fused member, which cannot raise
        if pruned is not None:
            raise optuna.TrialPruned(pruned)
        if job.status not in (JobStatus.COMPLETED, JobStatus.FAILED):
            return self._fail(trial, f"the launcher returned no outcome for the job (status {job.status.name})")
        try:
            returned = job.return_value  # raises the job's exception if it failed
        except Exception as exc:
            return self._fail(trial, f"{type(exc).__name__}: {exc}")
        values = list(returned) if isinstance(returned, (list, tuple)) else [returned]
        try:
            values = [float(v) for v in values]
        except (TypeError, ValueError):
            return self._fail(trial, f"the job returned {returned!r}, not {len(self.directions)} number(s)")
        if len(values) != len(self.directions):
            return self._fail(trial, f"the job returned {len(values)} values for {len(self.directions)} directions")
        if not all(math.isfinite(v) for v in values):
            return self._fail(trial, f"the job returned {returned!r}")
        return values if len(values) > 1 else values[0]

    def _fail(self, trial: optuna.Trial, reason: str) -> Any:
        """Record a failed job: Optuna marks a nan result FAIL; the reason makes it count as finished.
        A reason the job gave itself (sweeplab: "diverged: ...") is kept."""
        # `trial.user_attrs` is this process's copy: what the job set is in the storage
        (stored,) = [t for t in trial.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
                     if t.number == trial.number]
        if FAIL_REASON not in stored.user_attrs:
            trial.set_user_attr(FAIL_REASON, " ".join(reason.split())[:500])
        if stored.user_attrs.get(JOB_DIR):
            try:
                end_a_job_left_running(Path(stored.user_attrs[JOB_DIR]), reason)
            except OSError as exc:  # the trial's reason is in the storage all the same
                log.warning("trial %d: cannot record its failure in %s: %s", trial.number, exc.filename, exc.strerror)
        return self._nan()

    def _launch_failed(self, trial: optuna.Trial, exc: OSError) -> Any:
        """Record a job that could not start for want of room for its files (a full disk): Hydra writes
        its ``.hydra/`` files before the task, and names no file when the write itself fails."""
        where = exc.filename or f"its job's files under {self.sweep_dir}"
        return self._fail(trial, f"cannot write {where}: {exc.strerror or exc}")

    def _nan(self) -> Any:
        return [math.nan] * len(self.directions) if len(self.directions) > 1 else math.nan

    # ------------------------------------------------------------ helpers

    def _open_storage(self) -> optuna.storages.BaseStorage:
        storage = open_storage(self.storage, self.heartbeat_interval, self.grace_period)
        if self.fuse > 1:  # fused trials run in this machine's processes: a SQLite file may use WAL
            commit_to_wal(storage)
        return storage

    def _log_start(self, study: optuna.Study) -> None:
        tally = Tally.of(study.get_trials(deepcopy=False))
        resumed = f", resuming: {tally.finished} finished, {tally.interrupted} interrupted" if study.trials else ""
        log.info("Optuna study '%s' in %s (%s%s)", study.study_name, self.url,
                 "/".join(self.directions), resumed)
        log.info("sampler %s, pruner %s, n_trials %d, %d worker(s), max_failure_rate %s",
                 class_name(self.sampler_cfg), class_name(self.pruner_cfg),
                 self.n_trials, self.n_workers, self.max_failure_rate)
        for key, dist in self.space.distributions.items():
            log.info("  %s: %s", key, dist)
        log.info("watch it live: optuna-dashboard %s", self.url)

    def _log_end(self, study: optuna.Study) -> None:
        tally = Tally.of(study.get_trials(deepcopy=False))
        log.info("study '%s': %d finished (%d complete, %d pruned, %d failed), %d interrupted; results in %s",
                 study.study_name, tally.finished, tally.complete, tally.pruned, tally.failed,
                 tally.interrupted, self.sweep_dir)
        log.info("to resume or add trials (a larger n_trials): %s", self.resume_by)
        if tally.complete and len(self.directions) == 1:
            best = study.best_trial
            log.info("best: trial %d, value %.4f, %s", best.number, best.value,
                     " ".join(f"{k}={v}" for k, v in best.params.items()))

    def _too_many_failures(self, study: optuna.Study) -> str:
        failed = [t for t in study.get_trials(deepcopy=False) if FAIL_REASON in t.user_attrs]
        last = failed[-1]
        return (f"study stopped: {len(failed)} trials failed, more than max_failure_rate="
                f"{self.max_failure_rate} of n_trials={self.n_trials} allows "
                f"({max_failures(self.n_trials, self.max_failure_rate)}). Last: trial {last.number}: "
                f"{last.user_attrs[FAIL_REASON]}")


def storage_by_reference(config: DictConfig) -> None:
    """Each job composes its config again from the sweep's ``hydra.overrides.hydra`` and saves it in
    its ``.hydra/hydra.yaml``: name the storage there by the environment variable that carries it to
    the jobs, so the password in its URL stays out of every job's files (the sweeper has its URL)."""
    kept = [o for o in config.hydra.overrides.hydra if o.lstrip("+~").split("=", 1)[0] != STORAGE_KEY]
    with read_write(config.hydra.overrides):
        config.hydra.overrides.hydra = [*kept, f"{STORAGE_KEY}=${{oc.env:{sweeplab.job.trial.STORAGE}}}"]


def as_overrides(params: Optional[DictConfig]) -> list[str]:
    """``{lr: "interval(0.1, 1)"}`` -> ``["lr=interval(0.1, 1)"]``."""
    return [f"{key}={value}" for key, value in (params or {}).items()]
