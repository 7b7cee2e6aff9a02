"""Hydra's basic sweeper, made to resume: before anything launches it reads the sweep dir, skips the
jobs that already finished (matched on their overrides, not their numbers), reruns unfinished ones
into their old dirs and numbers new ones after every existing dir. Only the jobs to run reach the
launcher (basic, joblib, submitit, ...), in blocks of consecutive job numbers."""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, List, Optional, Sequence

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobReturn
from hydra.errors import CompactHydraException
from omegaconf import OmegaConf

from sweeplab.interrupts import sigterm_as_keyboard_interrupt

from ._resume import Plan, blocks, plan_fresh, plan_resume, read_past_jobs

log = logging.getLogger(__name__)


class SweepInterrupted(CompactHydraException):
    """Ctrl-C or SIGTERM during a sweep; the message says how to resume."""


class GridSweeper(BasicSweeper):
    def __init__(self, max_batch_size: Optional[int], params: Optional[dict] = None, resume: bool = True) -> None:
        super().__init__(max_batch_size=max_batch_size, params=params)
        self.resume = resume

    def sweep(self, arguments: List[str]) -> Any:
        assert self.config is not None and self.launcher is not None and self.hydra_context is not None
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        overrides = parser.parse_overrides(self._parse_config() + list(arguments))
        (jobs,) = self.split_arguments(overrides, None)

        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        plan = plan_resume(jobs, read_past_jobs(sweep_dir), sweep_dir) if self.resume else plan_fresh(jobs)
        log.info(plan.summary())
        launched = time.time()
        try:
            returns = self._launch(plan)
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
        return returns

    def _launch(self, plan: Plan) -> list[Sequence[JobReturn]]:
        """Launch the plan's jobs block by block; a failed job fails the sweep once all have run."""
        assert self.launcher is not None
        returns: list[Sequence[JobReturn]] = []
        with sigterm_as_keyboard_interrupt():
            for first_num, batch in blocks(plan.to_run, self.max_batch_size):
                # Hydra composes every job of the batch here so that a bad override fails before any
                # job runs; a launcher that composes the whole batch first anyway is spared the copy.
                if not getattr(self.launcher, "composes_batch_before_running", False):
                    self.validate_batch_is_legal(batch)
                returns.append(self.launcher.launch(batch, initial_job_idx=first_num))
        for results in returns:
            for result in results:
                _ = result.return_value  # raises the first failed job's error, as Hydra's basic sweeper does
        return returns


def interrupted(jobs: Sequence[Sequence[str]], sweep_dir: Path) -> SweepInterrupted:
    """How many of ``jobs`` finished, and how to resume."""
    left = plan_resume(jobs, read_past_jobs(sweep_dir), sweep_dir)
    return SweepInterrupted(
        f"sweep interrupted: {len(left.skipped)} of {len(jobs)} jobs finished, {len(left.to_run)} left. "
        f"Rerun the same command with hydra.sweep.dir={sweep_dir} to resume."
    )
