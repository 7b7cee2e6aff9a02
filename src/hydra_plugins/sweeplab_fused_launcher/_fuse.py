"""The fused launcher's fusion: group sweeplab's jobs that fuse, run each group as one stacked model
(``sweeplab.job.task.run_jobs``) and every other job as Hydra's basic launcher runs it.

A fused member is set up as Hydra's ``run_job`` sets up a job (output dir, ``.hydra/`` files, job
callbacks, its log file, a ``JobReturn``); only the training is shared.
"""
from __future__ import annotations

import contextlib
import copy
import logging
import math
import os
import threading
from pathlib import Path
from typing import Any, Callable, ContextManager, Iterator, Optional, Sequence

from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import (
    JobReturn,
    JobRuntime,
    JobStatus,
    _flush_loggers,
    _save_config,
    configure_log,
    env_override,
    filter_overrides,
)
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from sweeplab.errors import ConfigError
from sweeplab.job.task import Job, resolve_device, run_jobs
from sweeplab.training.checkpoint import fingerprint, resumable_after
from sweeplab.training.data import load_splits

from ._groups import (
    MB,
    Budget,
    chunk_size,
    default_budget,
    describe_shape,
    differing_keys,
    flat,
    fusion_key,
    invalid_reason,
    layer_sizes,
    member_bytes,
    split,
    unsupported_reason,
)
from ._returns import PackedJobReturn
from ._yaml_text import YamlText

log = logging.getLogger(__name__)


def run_groups(
    launcher: Any, configs: list[DictConfig], scopes: Sequence[Callable[[], ContextManager[Any]]],
    run_alone: Callable[[DictConfig, Callable[[], ContextManager[Any]]], JobReturn],
) -> list[JobReturn]:
    """Run sweeplab's jobs ``configs`` (it empties the list): each group that fuses as one stacked model,
    every other job with ``run_alone``. Each job's configs are let go once it has run (its ``JobReturn``
    keeps them packed), so what the launcher holds does not grow with the sweep's size."""
    task_configs = [task_config(sweep_config) for sweep_config in configs]
    groups = plan(configs, task_configs, launcher.max_memory_mb, launcher.max_members)
    pending = {position: (configs[position], task_configs[position]) for position in range(len(configs))}
    configs.clear()
    del task_configs
    returns: dict[int, JobReturn] = {}
    for group in groups:
        members = [pending.pop(position) for position in group]
        if len(group) == 1:
            returns[group[0]] = run_alone(members[0][0], scopes[group[0]])
        else:
            values = run_fused([m[0] for m in members], [m[1] for m in members], [scopes[i] for i in group], launcher)
            returns.update(zip(group, map(PackedJobReturn, values), strict=True))
            configure_log(launcher.config.hydra.hydra_logging, launcher.config.hydra.verbose)
        del members
    return [returns[i] for i in range(len(returns))]


def prefetch_data(cfg: DictConfig) -> threading.Thread:
    """Start loading the data of ``cfg`` (a job's config) into ``load_splits``' per-process cache on
    another thread, while Hydra composes the rest of the batch: decompressing and converting release
    the GIL, so on two cores the two overlap. A failure is left for the job's own set-up, which raises
    and reports it."""

    def load() -> None:
        with contextlib.suppress(Exception):
            load_splits(cfg.data, resolve_device(cfg.device))

    thread = threading.Thread(target=load, name="sweeplab-data-prefetch", daemon=True)
    thread.start()
    return thread


def plan(
    configs: Sequence[DictConfig], task_configs: Sequence[DictConfig], max_memory_mb: Optional[int],
    max_members: Optional[int],
) -> list[list[int]]:
    """Positions of ``configs`` (the jobs' task configs: ``task_configs``) grouped: jobs that fuse
    together, and jobs alone; logged, one line each.

    Every group's device and memory budget is checked here, before any job runs.
    """
    log.info("fused launcher: %d jobs", len(configs))
    by_key: dict[str, list[int]] = {}
    alone: dict[int, str] = {}
    # each valid config resolved once (resolving interpolations is most of what reading a config costs)
    flats: dict[int, dict[str, Any]] = {}
    for position, (sweep_config, cfg) in enumerate(zip(configs, task_configs, strict=True)):
        reason = resumes_alone(sweep_config, cfg) or invalid_reason(cfg)
        if reason is None:
            flats[position] = flat(cfg)
            reason = unsupported_reason(cfg, flats[position])
        if reason is None and sweep_config.hydra.job.chdir:
            reason = "hydra.job.chdir=true (members of a group share one working dir)"
        if reason is None:
            shared_hydra = OmegaConf.to_container(sweep_config.hydra.job.env_set, resolve=True)
            key = fusion_key(cfg, flats[position]) + repr(sorted(shared_hydra.items()))
            by_key.setdefault(key, []).append(position)
        else:
            alone[position] = reason

    groups: dict[int, list[int]] = {}
    for positions in by_key.values():
        if len(positions) == 1:
            alone[positions[0]] = "no other job of its shape"
            continue
        for chunk, reason in fit(configs, task_configs, flats, positions, max_memory_mb, max_members):
            if reason is not None:
                alone.update(dict.fromkeys(chunk, reason))
            else:
                groups[chunk[0]] = chunk
    for position, reason in sorted(alone.items()):
        log.info("  alone %s: %s", job_numbers(configs, [position]), reason)
        groups[position] = [position]
    return [groups[first] for first in sorted(groups)]


def fit(
    configs: Sequence[DictConfig], task_configs: Sequence[DictConfig], flats: dict[int, dict[str, Any]],
    positions: Sequence[int], max_memory_mb: Optional[int], max_members: Optional[int],
) -> list[tuple[list[int], Optional[str]]]:
    """``positions`` (jobs of one shape) in chunks that fit the memory budget, each logged: a chunk
    with a reason runs its jobs alone. The shapes are the data's (loaded once per process, as the
    jobs load it), not the config's alone. ``flats``: each task config's :func:`flat`."""
    first = task_configs[positions[0]]
    device = resolve_device(first.device)
    try:
        splits = load_splits(first.data, device)
    except Exception as exc:  # each job reports it, alone, as its own failure
        return [(list(positions), f"its data does not load ({type(exc).__name__}: {exc})")]
    if len(splits.input_shape) != 1:
        return [(list(positions), f"samples of shape {splits.input_shape}: the stacked model takes flat samples")]
    sizes = layer_sizes(first, splits.input_shape, splits.n_classes)
    shape, needed = describe_shape(first, sizes), member_bytes(first, sizes)
    if max_memory_mb is not None:
        budget = Budget(max_memory_mb * MB, "hydra.launcher.max_memory_mb")
    else:
        budget = default_budget(device)
    size = chunk_size(needed, budget, max_members, device)
    each = f"one member of shape {shape} needs {needed / MB:.3g} MB"
    if size == 0:
        if max_memory_mb is not None:
            raise ConfigError(f"hydra.launcher.max_memory_mb={max_memory_mb}: too small for one member of shape "
                              f"{shape}, which needs {math.ceil(needed / MB)} MB; raise it or leave it null "
                              "(half the memory this process may still use)")
        return [(list(positions), f"{each}, over the budget {budget}")]
    if size == 1:
        why = "hydra.launcher.max_members=1" if max_members == 1 else f"{each}: two pass the budget {budget}"
        return [(list(positions), why)]
    chunks = split(positions, size)
    for chunk in chunks:
        if len(chunk) > 1:
            log.info("  fused %s: %d members, %s on %s, %.3g MB each of budget %s, differing in %s",
                     job_numbers(configs, chunk), len(chunk), shape, device, needed / MB, budget,
                     ", ".join(differing_keys([flats[p] for p in chunk])) or "nothing")
    limit = f"the budget {budget}" if size == budget.bytes // needed else \
        f"at most {size} members a group (hydra.launcher.max_members)"
    return [(chunk, None if len(chunk) > 1 else f"the rest of its group after splitting it to fit {limit}")
            for chunk in chunks]


def job_numbers(configs: Sequence[DictConfig], positions: Sequence[int]) -> str:
    return ",".join(f"#{configs[p].hydra.job.num}" for p in positions)


def resumes_alone(sweep_config: DictConfig, cfg: DictConfig) -> Optional[str]:
    """Why a job with ``checkpoint=true`` whose dir holds its unfinished run's checkpoint runs alone: the
    task resumes it after its last finished epoch, where a stacked model would start it at epoch 1."""
    after = resumable_after(Path(job_output_dir(sweep_config)), fingerprint(cfg)) if cfg.checkpoint else None
    return None if after is None else f"resumes from its checkpoint after epoch {after}"


def job_output_dir(sweep_config: DictConfig) -> str:
    """The job's dir as ``run_job`` resolves it: ``hydra:`` interpolations in it see the job's own config."""
    saved = HydraConfig.instance().cfg
    HydraConfig.instance().set_config(sweep_config)
    try:
        return os.path.abspath(os.path.join(str(sweep_config.hydra.sweep.dir), str(sweep_config.hydra.sweep.subdir)))
    finally:
        HydraConfig.instance().cfg = saved


def task_config(sweep_config: DictConfig) -> DictConfig:
    """The job's config without its ``hydra`` node, as ``run_job`` makes it (a copy, then ``del cfg.hydra``),
    without copying the ``hydra`` node first: it is most of the config."""
    cfg = copy.deepcopy(sweep_config, memo={id(sweep_config._get_node("hydra")): OmegaConf.create()})
    with read_write(cfg), open_dict(cfg):
        del cfg["hydra"]
    return cfg


def run_fused(
    configs: Sequence[DictConfig], task_configs: Sequence[DictConfig],
    scopes: Sequence[Callable[[], ContextManager[Any]]], launcher: Any,
) -> list[JobReturn]:
    """Set up each member as ``run_job`` would, train them together, end each as its own job."""
    callbacks = launcher.hydra_context.callbacks
    has_callbacks = bool(launcher.config.hydra.callbacks)  # Hydra makes them from it; none: nothing to call
    saved_hydra_config = HydraConfig.instance().cfg
    try:
        texts = YamlText()
        jobs = [open_job(sweep_config, cfg, texts) for sweep_config, cfg in zip(configs, task_configs, strict=True)]
        for sweep_config, job in zip(configs, jobs, strict=True):
            log.info("\t#%d : %s", sweep_config.hydra.job.num, " ".join(filter_overrides(job.overrides)))
        HydraConfig.instance().cfg = jobs[0].hydra_cfg
        configure_log(configs[0].hydra.job_logging, configs[0].hydra.verbose)
        with member_logs([Path(j.hydra_cfg.hydra.runtime.output_dir) for j in jobs],
                         [c.hydra.job.num for c in configs]) as logging_of:
            # the plan fuses only members whose configs have no problem (unfusable_reason)
            members = [Job(j.cfg, Path(j.hydra_cfg.hydra.runtime.output_dir), both(logging_of(k), scope),
                           validated=True)
                       for k, (j, scope) in enumerate(zip(jobs, scopes, strict=True))]
            with env_override(jobs[0].hydra_cfg.hydra.job.env_set):
                if has_callbacks:
                    for sweep_config, job in zip(configs, jobs, strict=True):  # each sees its own, as in run_job
                        HydraConfig.instance().cfg = job.hydra_cfg
                        callbacks.on_job_start(config=sweep_config, task_function=launcher.task_function)
                HydraConfig.instance().cfg = jobs[0].hydra_cfg
                try:
                    values: list[Any] = run_jobs(members)
                    status = JobStatus.COMPLETED
                except Exception as exc:
                    values, status = [exc] * len(jobs), JobStatus.FAILED
            _flush_loggers()
        for sweep_config, job, value in zip(configs, jobs, values, strict=True):
            job.return_value, job.status = value, status
            if has_callbacks:
                HydraConfig.instance().cfg = job.hydra_cfg
                callbacks.on_job_end(config=sweep_config, job_return=job)
        for job in jobs:  # as run_job's copy of it: its hydra node no longer sees (and keeps) the whole config
            job.hydra_cfg.hydra._set_parent(job.hydra_cfg)
        return jobs
    finally:
        HydraConfig.instance().cfg = saved_hydra_config


def both(
    first: Callable[[], ContextManager[Any]], second: Callable[[], ContextManager[Any]]
) -> Callable[[], ContextManager[Any]]:
    @contextlib.contextmanager
    def entered() -> Iterator[None]:
        with first(), second():
            yield

    return entered


def open_job(sweep_config: DictConfig, cfg: DictConfig, texts: Optional[YamlText] = None) -> JobReturn:
    """What ``hydra.core.utils.run_job`` does before it calls the task (whose config is ``cfg``): output
    dir, ``.hydra/`` files (their text from ``texts``, shared by a group's members). The job's Hydra
    config is made current once (``hydra:`` interpolations in its dir see it) and is the ``JobReturn``'s:
    a later job's replaces it, nothing changes it."""
    hydra_cfg = current_hydra_config(sweep_config)
    output_dir = os.path.abspath(os.path.join(str(sweep_config.hydra.sweep.dir), str(sweep_config.hydra.sweep.subdir)))
    with read_write(sweep_config.hydra.runtime), open_dict(sweep_config.hydra.runtime):
        sweep_config.hydra.runtime.output_dir = output_dir
    ret = JobReturn()
    ret.cfg = cfg
    ret.hydra_cfg = hydra_cfg
    ret.overrides = OmegaConf.to_container(sweep_config.hydra.overrides.task)
    ret.working_dir = os.getcwd()
    ret.task_name = JobRuntime.instance().get("name")
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    if sweep_config.hydra.output_subdir is not None:
        hydra_output = Path(output_dir) / str(sweep_config.hydra.output_subdir)
        hydra_output.mkdir(parents=True, exist_ok=True)
        texts = texts or YamlText()
        for name, text in (("config.yaml", texts.to_yaml(ret.cfg)), ("hydra.yaml", texts.to_yaml(ret.hydra_cfg))):
            (hydra_output / name).write_text(text, encoding="utf-8")  # as Hydra's _save_config writes them
        _save_config(sweep_config.hydra.overrides.task, "overrides.yaml", hydra_output)
    return ret


def current_hydra_config(sweep_config: DictConfig) -> DictConfig:
    """``HydraConfig.set_config(sweep_config)``, whose config it returns, without its copy of the ``hydra``
    node (most of a job's config): the job's own node is made read-only and held as it is (its parent
    stays ``sweep_config``, as set_config sets the copy's), so a group's members are not copied twice."""
    OmegaConf.set_readonly(sweep_config.hydra, True)
    holder = OmegaConf.create(flags={"no_deepcopy_set_nodes": True})
    holder.hydra = sweep_config._get_node("hydra")
    holder._set_flag("no_deepcopy_set_nodes", None)
    holder.hydra._set_parent(sweep_config)
    HydraConfig.instance().cfg = holder
    return holder


@contextlib.contextmanager
def member_logs(output_dirs: Sequence[Path], job_numbers: Sequence[int]) -> Iterator[Callable[[int], Callable]]:
    """Give every member the log file(s) the first member's job logging opened, in its own dir.

    Yields ``logging_of(k)``: a context in which log records go to member k's files only (lines
    logged outside any member's context go to every member's files), and console lines start with
    the member's job number.
    """
    root = logging.getLogger()
    current: list[Optional[int]] = [None]

    def only(k: int) -> Callable[[logging.LogRecord], bool]:
        return lambda record: current[0] is None or current[0] == k

    def tag(record: logging.LogRecord) -> bool:
        if current[0] is not None and not getattr(record, "fused_member", False):
            record.msg, record.fused_member = f"#{job_numbers[current[0]]} {record.msg}", True
        return True

    added: list[logging.Handler] = []
    for handler in list(root.handlers):
        if not isinstance(handler, logging.FileHandler):
            handler.addFilter(tag)
            continue
        handler.addFilter(only(0))
        try:
            relative = Path(handler.baseFilename).relative_to(output_dirs[0])
        except ValueError:
            continue  # a log file outside the job dir: shared by the group as it is
        for k, output_dir in enumerate(output_dirs[1:], start=1):
            copy_ = logging.FileHandler(output_dir / relative)
            copy_.setFormatter(handler.formatter)
            copy_.setLevel(handler.level)
            copy_.addFilter(only(k))
            root.addHandler(copy_)
            added.append(copy_)

    @contextlib.contextmanager
    def selected(k: int) -> Iterator[None]:
        current[0] = k
        try:
            yield
        finally:
            current[0] = None

    try:
        yield lambda k: (lambda: selected(k))
    finally:
        for handler in added:
            root.removeHandler(handler)
            handler.close()
