"""Hydra's basic launcher (jobs one after another in this process, each through Hydra's ``run_job``),
but each job's config comes from ``sweeplab.sweep.compose``: composed once per group of jobs that differ only
in the values they set. Composing train.py's config took most of a short job's time, twice: once when
the sweeper checks the batch, once when the job runs. This launcher composes the whole batch before
any job runs (so a bad override stops the batch before a job runs, and the sweeper need not compose it
again), then each job again as it runs, to keep one job's config alive at a time."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional, Sequence

from hydra.core.utils import JobReturn, configure_log, filter_overrides, run_job, setup_globals
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

from sweeplab.sweep.compose import Composer

log = logging.getLogger(__name__)


class SequentialLauncher(Launcher):
    composes_batch_before_running = True  # read by sweeplab's grid sweeper

    def __init__(self) -> None:
        self.config: Optional[DictConfig] = None
        self.task_function: Optional[TaskFunction] = None
        self.hydra_context: Optional[HydraContext] = None
        self.composer: Optional[Composer] = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config, self.hydra_context, self.task_function = config, hydra_context, task_function
        self.composer = Composer(hydra_context.config_loader, config)  # one for the sweep's batches

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        assert self.config is not None and self.hydra_context is not None and self.task_function is not None
        assert self.composer is not None
        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        log.info(f"Launching {len(job_overrides)} jobs locally")
        for idx, overrides in enumerate(job_overrides, start=initial_job_idx):
            self.composer.compose(overrides, idx)
        runs = []
        for idx, overrides in enumerate(job_overrides, start=initial_job_idx):
            log.info(f"\t#{idx} : {' '.join(filter_overrides(overrides))}")
            runs.append(run_job(hydra_context=self.hydra_context, task_function=self.task_function,
                                config=self.composer.compose(overrides, idx), job_dir_key="hydra.sweep.dir",
                                job_subdir_key="hydra.sweep.subdir"))
            configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        return runs
