"""What a rerun into an existing sweep dir must do, as pure functions of the dir's files.

The dir's jobs are read by :func:`sweeplab.jobfiles.find_jobs` (the report's reader too): a past job
is known by its ``.hydra/hydra.yaml`` (its job number, task overrides and real output dir) and the
``status`` in its ``metrics.json``. Jobs are matched on their overrides, compared as parsed values
(``lr=0.10`` is ``lr=0.1``) in any order, so a reordered grid still resumes.
"""
from __future__ import annotations

import itertools
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional, Sequence

from hydra.core.override_parser.overrides_parser import OverridesParser

from sweeplab.errors import ConfigError
from sweeplab.jobfiles import JobDir, JobKey, find_jobs, job_key, read_metrics


@dataclass
class Plan:
    """The jobs of this run: skipped (finished before), and (job number, overrides, why) to run."""

    skipped: list[JobDir] = field(default_factory=list)
    to_run: list[tuple[int, list[str]]] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)  # per job to run: failed, interrupted or new
    resume: bool = True
    unknown: list[JobDir] = field(default_factory=list)  # dirs that look like jobs but say not which

    def summary(self) -> str:
        if not self.resume:
            return f"resume off (hydra.sweeper.resume=false): running all {len(self.to_run)} jobs"
        counts = Counter(self.reasons)
        line = (f"{len(self.skipped)} finished jobs skipped, {len(self.to_run)} to run "
                f"({counts['failed']} failed, {counts['interrupted']} interrupted, {counts['new']} new)")
        if self.unknown:
            line += (f"; {len(self.unknown)} dir(s) left alone, not known as jobs: "
                     + "; ".join(job.reason or str(job.dir) for job in self.unknown))
        return line


def read_past_jobs(sweep_dir: Path) -> list[JobDir]:
    """Every job dir of ``sweep_dir`` (see :func:`sweeplab.jobfiles.find_jobs`)."""
    return find_jobs(sweep_dir)


def plan_fresh(jobs: Sequence[Sequence[str]]) -> Plan:
    """Every job, numbered from 0 (Hydra's basic sweeper: old dirs of the same numbers are overwritten)."""
    return Plan(to_run=[(num, list(job)) for num, job in enumerate(jobs)], reasons=["new"] * len(jobs), resume=False)


def plan_resume(jobs: Sequence[Sequence[str]], past: Sequence[JobDir], sweep_dir: Path) -> Plan:
    """Skip each job with a finished past job of the same overrides; rerun an unfinished one at its
    old number (the newest, if several); number new jobs after every past job and numbered dir."""
    by_key: dict[JobKey, list[JobDir]] = {}
    plan = Plan()
    for job in past:
        if job.overrides is None or job.num is None:
            plan.unknown.append(job)
        else:
            by_key.setdefault(job_key(job.overrides), []).append(job)
    taken = {job.num for job in past if job.num is not None} | {
        int(p.name) for p in sweep_dir.iterdir() if p.name.isdigit()}
    next_num = max(taken, default=-1) + 1

    for job in jobs:
        # the newest finished past job, else the newest; a grid that repeats a job takes the next one
        candidates = by_key.get(job_key(job), [])
        match = max(candidates, key=lambda p: p.precedence, default=None)
        if match is None:
            plan.to_run.append((next_num, list(job)))
            plan.reasons.append("new")
            next_num += 1
            continue
        candidates.remove(match)
        if match.finished:
            plan.skipped.append(match)
        else:
            assert match.num is not None
            plan.to_run.append((match.num, list(job)))
            plan.reasons.append("failed" if match.status == "failed" else "interrupted")
    return plan


def blocks(
    to_run: Sequence[tuple[int, list[str]]], max_batch_size: Optional[int]
) -> Iterator[tuple[int, list[list[str]]]]:
    """(first job number, overrides) launches: runs of consecutive numbers, at most ``max_batch_size`` long,
    since a launcher numbers a batch's jobs ``initial_job_idx``, ``initial_job_idx + 1``, ..."""
    ordered = sorted(to_run, key=lambda item: item[0])
    for _, run in itertools.groupby(enumerate(ordered), key=lambda item: item[1][0] - item[0]):
        block = [item for _, item in run]
        size = max_batch_size or len(block)
        for start in range(0, len(block), size):
            chunk = block[start : start + size]
            yield chunk[0][0], [overrides for _, overrides in chunk]


def check_grid(jobs: Sequence[Sequence[str]], grids: Sequence[Sequence[Sequence[str]]], past: Sequence[JobDir],
               extend: bool, sweep_dir: Path) -> None:
    """A sweep dir holds one grid: refuse another (one line naming the dir and how the grids differ)
    unless ``extend``. The same grid is any grid run into the dir before (sweep.yaml), or all of them
    together; a dir without sweep.yaml (an older version's) knows only its past jobs, which must all
    be in the grid."""
    if extend or not (grids or past):
        return
    wanted = Counter(job_key(job) for job in jobs)
    if grids:
        known = [Counter(job_key(job) for job in grid) for grid in grids]
        everything = sum(known, Counter())
        if wanted in known or set(wanted) == set(everything):
            return
        before = [job for grid in grids for job in grid]
    else:
        before = [list(job.overrides) for job in past if job.overrides is not None]
        if {job_key(job) for job in before} <= set(wanted):
            return
    raise ConfigError(
        f"hydra.sweep.dir={sweep_dir} holds a sweep of another grid ({len(before)} jobs; {difference(before, jobs)}). "
        f"Give another hydra.sweep.dir, or add hydra.sweeper.extend=true to add this grid's {len(jobs)} jobs "
        "to that sweep.")


def difference(before: Sequence[Sequence[str]], now: Sequence[Sequence[str]]) -> str:
    """How two grids differ, key by key: ``lr: 0.1,0.01 there, 0.5 here``."""
    old, new = _values(before), _values(now)
    changed = [f"{key}: {','.join(old.get(key, ['(not set)']))} there, {','.join(new.get(key, ['(not set)']))} here"
               for key in {**old, **new} if set(old.get(key, ())) != set(new.get(key, ()))]
    return "; ".join(changed) or "the same values in other combinations"


def _values(jobs: Sequence[Sequence[str]]) -> dict[str, list[str]]:
    """Each key's values across ``jobs``, in order of first appearance."""
    parser = OverridesParser.create()
    values: dict[str, dict[str, None]] = {}
    for text in itertools.chain.from_iterable(jobs):
        try:
            override = parser.parse_override(text)
            key, value = override.get_key_element(), str(override.value())
        except Exception:  # compared as text, as job_key does
            key, _, value = text.partition("=")
        values.setdefault(key, {})[value] = None
    return {key: list(found) for key, found in values.items()}


def best_line(jobs: Sequence[Sequence[str]], past: Sequence[JobDir], objective: object, sweep_dir: Path) -> str:
    """The sweep's end: the grid's best finished job so far by ``objective`` (a metrics.json key;
    a name with ``loss`` or ``error`` is minimised), and the report command."""
    report = f"report: sweeplab report {sweep_dir}"
    if not isinstance(objective, str):
        return report
    grid = {job_key(job) for job in jobs}
    scored = []
    for job in past:
        if job.status == "ok" and job.overrides is not None and job_key(job.overrides) in grid:
            value = read_metrics(job.dir).get(objective)
            if isinstance(value, (int, float)) and math.isfinite(value):
                scored.append((value, job))
    if not scored:
        return f"no job finished ok with a value of {objective}; {report}"
    lower = any(word in objective for word in ("loss", "error"))
    value, best = (min if lower else max)(scored, key=lambda item: item[0])
    overrides = " ".join(best.overrides or ()) or "(no overrides)"
    return f"best so far by {objective}: {value:.4g} ({overrides}) in {best.dir}; {report}"
