"""The fused launcher: compose every job's config, then run sweeplab's jobs through ``_fuse`` (groups
that fuse as one stacked model, the rest one at a time) and any other task's jobs as Hydra's basic
launcher runs them. Only sweeplab's task imports torch (``_fuse``), so the launcher serves any Hydra app.
"""
from __future__ import annotations

import contextlib
import itertools
import logging
import threading
from pathlib import Path
from typing import Any, Callable, ContextManager, Optional, Sequence

from hydra.core.utils import JobReturn, configure_log, run_job, setup_globals
from omegaconf import DictConfig

from sweeplab.errors import ConfigError

from ._returns import PackedJobReturn

log = logging.getLogger(__name__)
# jobs composed, planned and run at a time: a batch of thousands is run window by window, so the launcher
# holds at most this many jobs' configs (each ~160 KB of OmegaConf nodes); on a CPU a group has at most
# CPU_MAX_MEMBERS members anyway, on a GPU at most this many
WINDOW = 1024


def launch(
    launcher: Any, job_overrides: Sequence[Sequence[str]], initial_job_idx: int,
    job_scopes: Optional[Sequence[Callable[[], ContextManager[Any]]]] = None,
) -> list[JobReturn]:
    """Hydra's ``Launcher.launch``; ``job_scopes`` (one per job) are entered around each job's own
    work: the Optuna sweeper's ``fuse`` makes each job's trial current in them."""
    setup_globals()
    config = launcher.config
    configure_log(config.hydra.hydra_logging, config.hydra.verbose)
    for key in ("max_memory_mb", "max_members"):
        value = getattr(launcher, key)
        if value is not None and value < 1:
            raise ConfigError(f"hydra.launcher.{key}={value}: must be an integer >= 1, or null")
    Path(str(config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)

    ours = getattr(launcher.task_function, "sweeplab_task", False)
    scopes = list(job_scopes) if job_scopes is not None else [contextlib.nullcontext] * len(job_overrides)
    windows = [range(start, min(start + WINDOW, len(job_overrides))) for start in range(0, len(job_overrides), WINDOW)]
    first = compose(launcher, [job_overrides[p] for p in windows[0]], initial_job_idx, ours)
    for position in itertools.chain.from_iterable(windows[1:]):  # a bad override stops the batch before a job runs
        launcher.composer.check(job_overrides[position])
    if not ours:
        log.info("fused launcher: %s is not sweeplab's task: running %d jobs one at a time, as the basic "
                 "launcher does", getattr(launcher.task_function, "__qualname__", launcher.task_function),
                 len(job_overrides))
    returns: list[JobReturn] = []
    for window in windows:
        configs = first if window is windows[0] else \
            compose(launcher, [job_overrides[p] for p in window], initial_job_idx + window[0], ours)
        returns += run_window(launcher, configs, [scopes[p] for p in window], ours)  # it empties configs
    return returns


def compose(
    launcher: Any, job_overrides: Sequence[Sequence[str]], initial_job_idx: int, ours: bool
) -> list[DictConfig]:
    """The jobs' configs, numbered from ``initial_job_idx``; for sweeplab's task, the data loads meanwhile."""
    configs: list[DictConfig] = []
    prefetch: Optional[threading.Thread] = None
    for idx, overrides in enumerate(job_overrides, start=initial_job_idx):
        sweep_config = launcher.composer.compose(overrides, idx)
        configs.append(sweep_config)
        if ours and prefetch is None:
            from ._fuse import prefetch_data

            prefetch = prefetch_data(sweep_config)
    if prefetch is not None:
        prefetch.join()
    return configs


def run_window(
    launcher: Any, configs: list[DictConfig], scopes: Sequence[Callable[[], ContextManager[Any]]], ours: bool,
) -> list[JobReturn]:
    """Run the jobs ``configs`` (it empties the list): sweeplab's fused where they may be, any other
    task's one at a time."""
    config, hydra_context = launcher.config, launcher.hydra_context

    def run_alone(sweep_config: DictConfig, scope: Callable[[], ContextManager[Any]]) -> JobReturn:
        with scope():
            ret = run_job(hydra_context=hydra_context, task_function=launcher.task_function, config=sweep_config,
                          job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir")
        configure_log(config.hydra.hydra_logging, config.hydra.verbose)
        return PackedJobReturn(ret)

    if not ours:
        return [run_alone(configs.pop(0), scope) for scope in scopes]
    from ._fuse import run_groups  # torch and the stacked model: only for sweeplab's own task

    return run_groups(launcher, configs, scopes, run_alone)
