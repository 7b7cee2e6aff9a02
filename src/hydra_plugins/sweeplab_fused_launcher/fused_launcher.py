"""The Launcher Hydra discovers. The work is in ``_impl`` (any app) and ``_fuse`` (sweeplab's task, with
torch): Hydra's plugin scan skips modules whose names start with "_", so discovery stays fast and
imports no torch."""
from __future__ import annotations

from typing import Any, Callable, ContextManager, Optional, Sequence

from hydra.core.utils import JobReturn
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

from sweeplab.sweep.compose import Composer


class FusedLauncher(Launcher):
    # It composes every job of a batch before it runs any (to group them), so a bad override stops the
    # batch before a job runs: the grid sweeper need not compose the batch once more to check it.
    composes_batch_before_running = True

    def __init__(self, max_memory_mb: Optional[int] = None, max_members: Optional[int] = None) -> None:
        self.max_memory_mb = max_memory_mb
        self.max_members = max_members

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.hydra_context, self.task_function, self.config = hydra_context, task_function, config
        # one for the sweep: its later batches (an Optuna study's fused trials) reuse its compositions
        self.composer = Composer(hydra_context.config_loader, config)

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from ._impl import launch

        return launch(self, job_overrides, initial_job_idx)

    def launch_in_scopes(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int,
        job_scopes: Sequence[Callable[[], ContextManager[Any]]],
    ) -> Sequence[JobReturn]:
        """``launch``, entering ``job_scopes[i]`` around job i's own work (the Optuna sweeper's
        ``fuse`` makes each job's trial current there)."""
        from ._impl import launch

        return launch(self, job_overrides, initial_job_idx, job_scopes)
