"""The Launcher Hydra discovers. The work is in ``_pool``: Hydra's plugin scan skips modules whose names
start with "_", so discovery stays fast."""
from __future__ import annotations

from typing import Optional, Sequence

from hydra.core.utils import JobReturn
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


class PoolLauncher(Launcher):
    def __init__(self, n_workers: Optional[int] = None) -> None:
        from ._pool import PoolLauncherImpl

        self.launcher = PoolLauncherImpl(n_workers)

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.launcher.setup(hydra_context=hydra_context, task_function=task_function, config=config)

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        return self.launcher.launch(job_overrides, initial_job_idx)
