"""A grid sweeper that resumes: Hydra's basic sweeper's grid (the cartesian product of the command
line's and ``hydra.sweeper.params``' comma lists, ``range``, ``glob``), built on Hydra's public
``Sweeper``. Before anything launches it holds the sweep dir (one sweep per dir), checks that the
grid is the dir's own, reads the dir, skips the jobs that already finished (matched on their
overrides, not their numbers), reruns unfinished ones into their old dirs and numbers new ones after
every existing dir. Only the jobs to run reach the launcher (basic, joblib, submitit, ...), in blocks
of consecutive job numbers."""
from __future__ import annotations

import itertools
import logging
import os
import time
from pathlib import Path
from typing import Any, List, Optional, Sequence

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.core.plugins import Plugins
from hydra.core.utils import JobReturn
from hydra.plugins.launcher import Launcher
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

from sweeplab.errors import ConfigError, SweepInterrupted
from sweeplab.job.interrupts import sigterm_as_keyboard_interrupt
from sweeplab.jobfiles import Invocation, read_invocations, write_invocations
from sweeplab.sweep.launchers import composes_batch_before_running
from sweeplab.sweep.sweep_lock import hold_sweep_dir

from ._resume import Plan, best_line, blocks, check_grid, plan_fresh, plan_resume, read_past_jobs

log = logging.getLogger(__name__)


class GridSweeper(Sweeper):
    def __init__(self, max_batch_size: Optional[int], params: Optional[dict] = None, resume: bool = True,
                 extend: bool = False) -> None:
        if max_batch_size is not None and max_batch_size < 1:
            raise ConfigError(f"hydra.sweeper.max_batch_size={max_batch_size}: must be an integer >= 1, "
                              "or null for all jobs at once")
        self.max_batch_size, self.params = max_batch_size, params or {}
        self.resume, self.extend = resume, extend
        self.config: Optional[DictConfig] = None
        self.launcher: Optional[Launcher] = None
        self.hydra_context: Optional[HydraContext] = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.hydra_context, self.config = hydra_context, config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: List[str]) -> Any:
        assert self.config is not None and self.launcher is not None and self.hydra_context is not None
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        params = [f"{key}={value}" for key, value in self.params.items()]
        jobs = grid_jobs(parser.parse_overrides(params + list(arguments)))
        sweep_dir = Path(self.config.hydra.sweep.dir)
        check_subdir(self.config, sweep_dir)
        with hold_sweep_dir(sweep_dir):
            past = read_past_jobs(sweep_dir)
            invocations = read_invocations(sweep_dir)
            check_grid(jobs, [i.jobs for i in invocations], past, self.extend, sweep_dir)
            OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
            plan = plan_resume(jobs, past, sweep_dir) if self.resume else plan_fresh(jobs)
            log.info(plan.summary())
            invocations.append(Invocation.now(jobs))
            write_invocations(sweep_dir, invocations)
            try:
                returns = self._launch_all(plan, jobs, sweep_dir)
            finally:
                invocations[-1].ended = time.time()
                write_invocations(sweep_dir, invocations)
            log.info(best_line(jobs, read_past_jobs(sweep_dir), OmegaConf.select(self.config, "objective"), sweep_dir))
        return returns

    def _launch_all(self, plan: Plan, jobs: Sequence[Sequence[str]], sweep_dir: Path) -> list[Sequence[JobReturn]]:
        launched = time.time()
        try:
            return self._launch(plan)
        except KeyboardInterrupt:
            raise interrupted(jobs, sweep_dir) from None
        except Exception:
            # a job interrupted in a process of its own (SIGTERM to a submitit or SLURM job) records
            # `interrupted`, and reaches here as the launcher's error (submitit: "has not produced any output");
            # a job that failed is the sweep's error, as Hydra's basic sweeper has it
            ended = {job.status for job in read_past_jobs(sweep_dir) if job.written >= launched}
            if "interrupted" not in ended or "failed" in ended:
                raise
            raise interrupted(jobs, sweep_dir) from None

    def _launch(self, plan: Plan) -> list[Sequence[JobReturn]]:
        """Launch the plan's jobs block by block; a failed job fails the sweep once all have run."""
        assert self.launcher is not None
        returns: list[Sequence[JobReturn]] = []
        with sigterm_as_keyboard_interrupt():
            for first_num, batch in blocks(plan.to_run, self.max_batch_size):
                # Hydra composes every job of the batch here so that a bad override fails before any
                # job runs; a launcher that composes the whole batch first anyway is spared the copy.
                if not composes_batch_before_running(self.launcher):
                    self.validate_batch_is_legal(batch)
                returns.append(self.launcher.launch(batch, initial_job_idx=first_num))
        for results in returns:
            for result in results:
                _ = result.return_value  # raises the first failed job's error, as Hydra's basic sweeper does
        return returns


def grid_jobs(overrides: Sequence[Override]) -> list[list[str]]:
    """The cartesian product of the overrides' values, as Hydra's basic sweeper forms it: one list of
    ``key=value`` per job, in the order the keys were first given (a key given twice: the last wins)."""
    values: dict[str, list[str]] = {}
    for override in overrides:
        key = override.get_key_element()
        if not override.is_sweep_override():
            values[key] = [f"{key}={override.get_value_element_as_str()}"]
        elif override.is_discrete_sweep():
            values[key] = [f"{key}={value}" for value in override.sweep_string_iterator()]
        else:
            raise ConfigError(f"{key}={override.get_value_element_as_str()}: the grid sweeper takes lists, "
                              "range() and glob(); interval() needs hydra/sweeper=optuna")
    return [list(job) for job in itertools.product(*values.values())]


def check_subdir(config: DictConfig, sweep_dir: Path) -> None:
    """Job dirs must lie inside the sweep dir, where resume and the report find them."""
    subdir = str(OmegaConf.to_container(config.hydra.sweep, resolve=False)["subdir"])
    normal = os.path.normpath(subdir)
    if os.path.isabs(subdir) or normal == ".." or normal.startswith(".." + os.sep):
        raise ConfigError(f"hydra.sweep.subdir={subdir}: puts job dirs outside hydra.sweep.dir={sweep_dir}, "
                          "where resume and the report cannot find them; give a path inside it, "
                          "such as ${hydra.job.num}")


def interrupted(jobs: Sequence[Sequence[str]], sweep_dir: Path) -> SweepInterrupted:
    """How many of ``jobs`` finished, and how to resume."""
    left = plan_resume(jobs, read_past_jobs(sweep_dir), sweep_dir)
    return SweepInterrupted(
        f"sweep interrupted: {len(left.skipped)} of {len(jobs)} jobs finished, {len(left.to_run)} left. "
        f"Rerun the same command with hydra.sweep.dir={sweep_dir} to resume."
    )
