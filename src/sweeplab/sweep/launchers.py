"""What sweeplab's sweepers ask of a launcher beyond Hydra's ``Launcher`` interface, in one place.

Hydra's launchers have ``setup`` and ``launch``. The grid and Optuna sweepers need three more facts,
and this module is where a launcher states them and a sweeper reads them:

- :func:`composes_batch_before_running`: the launcher composes every job of a batch before it runs any,
  so a bad override stops the batch before a job runs (the fused launcher, which groups the batch): the
  grid sweeper then skips Hydra's own check, which composes the whole batch once more.
- :class:`ScopedLauncher`: the launcher runs jobs in this process and can enter a scope around each
  job's own work (the fused launcher): Optuna's ``fuse`` makes each member's trial current there.
- :func:`runs_jobs_concurrently`: the launcher runs jobs in processes of their own and may be called
  from several threads at once (joblib, submitit), so the Optuna sweeper keeps several trials in flight
  through it; the basic and pool launchers run jobs in the calling process or set signal handlers.
"""
from __future__ import annotations

from typing import Any, Callable, ContextManager, Protocol, Sequence, runtime_checkable

from hydra.core.utils import JobReturn
from hydra.plugins.launcher import Launcher
from omegaconf import DictConfig, OmegaConf

CONCURRENT_LAUNCHERS = ("hydra_plugins.hydra_joblib_launcher.", "hydra_plugins.hydra_submitit_launcher.")


@runtime_checkable
class ScopedLauncher(Protocol):
    def launch_in_scopes(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int,
        job_scopes: Sequence[Callable[[], ContextManager[Any]]],
    ) -> Sequence[JobReturn]:
        """``launch``, entering ``job_scopes[i]`` around job i's own work."""


def composes_batch_before_running(launcher: Launcher) -> bool:
    """A launcher says so with a class attribute ``composes_batch_before_running = True``."""
    return bool(getattr(launcher, "composes_batch_before_running", False))


def runs_jobs_concurrently(config: DictConfig) -> bool:
    """Whether the configured launcher (``hydra.launcher``) is one of :data:`CONCURRENT_LAUNCHERS`."""
    return str(OmegaConf.select(config, "hydra.launcher._target_")).startswith(CONCURRENT_LAUNCHERS)


def is_basic_launcher(launcher: Launcher) -> bool:
    """The launcher ``hydra/launcher=basic`` gives: sweeplab's sequential launcher (train.py's basic) or
    Hydra's own. By name: Hydra's class lives in ``hydra._internal``, which has no compatibility promise
    to import from, and a core module imports no plugin."""
    return type(launcher).__name__ in ("SequentialLauncher", "BasicLauncher")
