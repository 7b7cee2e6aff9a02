"""What a rerun into an existing sweep dir must do, as pure functions of the dir's files.

A past job is known by its ``.hydra/hydra.yaml`` (its job number, task overrides and real output
dir) and the ``status`` in its ``metrics.json``. Jobs are matched on their overrides, compared as
parsed values (``lr=0.10`` is ``lr=0.1``) in any order, so a grid that grew or was reordered
still resumes.
"""
from __future__ import annotations

import itertools
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional, Sequence

import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser

from sweeplab.jobfiles import FINISHED, METRICS

MISSING = "missing"  # a job dir without metrics.json: killed before it wrote one
UNREADABLE = "unreadable"

JobKey = frozenset


@dataclass(frozen=True)
class PastJob:
    num: int
    overrides: tuple[str, ...]
    output_dir: Path
    status: str  # metrics.json's status, or missing / unreadable

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @property
    def written(self) -> float:
        """When the job last wrote its metrics (or, without them, its dir): newer wins among duplicates."""
        metrics = self.output_dir / METRICS
        return (metrics if metrics.is_file() else self.output_dir).stat().st_mtime


@dataclass
class Plan:
    """The jobs of this run: skipped (finished before), and (job number, overrides, why) to run."""

    skipped: list[PastJob] = field(default_factory=list)
    to_run: list[tuple[int, list[str]]] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)  # per job to run: failed, interrupted or new
    resume: bool = True

    def summary(self) -> str:
        if not self.resume:
            return f"resume off (hydra.sweeper.resume=false): running all {len(self.to_run)} jobs"
        counts = Counter(self.reasons)
        return (f"{len(self.skipped)} finished jobs skipped, {len(self.to_run)} to run "
                f"({counts['failed']} failed, {counts['interrupted']} interrupted, {counts['new']} new)")


def job_key(overrides: Sequence[str]) -> JobKey:
    """The overrides as an order-free set of (key, parsed value); unparsable ones as their text."""
    parser = OverridesParser.create()
    items = []
    for text in overrides:
        try:
            override = parser.parse_override(text)
            items.append((override.get_key_element(), repr(override.value())))
        except Exception:  # an override this parser cannot read without the config: compare its text
            items.append((text, ""))
    return frozenset(items)


def read_past_jobs(sweep_dir: Path) -> list[PastJob]:
    """Every job a multirun left in ``sweep_dir``, at any depth (so any ``hydra.sweep.subdir``)."""
    jobs = []
    for hydra_yaml in sorted(sweep_dir.glob("**/hydra.yaml")):
        try:
            hydra = yaml.safe_load(hydra_yaml.read_text())["hydra"]
            num, overrides = int(hydra["job"]["num"]), tuple(hydra["overrides"]["task"])
            recorded, subdir = Path(hydra["runtime"]["output_dir"]), Path(hydra["output_subdir"])
        except Exception:  # not Hydra's, damaged, or a single run's (no job number): nothing to resume
            continue
        # the job's dir is runtime.output_dir, unless the sweep dir was moved or renamed since
        same = _same_file(recorded / subdir / "hydra.yaml", hydra_yaml)
        output_dir = recorded if same else hydra_yaml.parents[len(subdir.parts)]
        jobs.append(PastJob(num, overrides, output_dir, read_status(output_dir)))
    return jobs


def _same_file(a: Path, b: Path) -> bool:
    return a.is_file() and a.samefile(b)


def read_status(job_dir: Path) -> str:
    path = job_dir / METRICS
    if not path.is_file():
        return MISSING
    try:
        return str(json.loads(path.read_text())["status"])
    except Exception:
        return UNREADABLE


def plan_fresh(jobs: Sequence[Sequence[str]]) -> Plan:
    """Every job, numbered from 0 (Hydra's basic sweeper: old dirs of the same numbers are overwritten)."""
    return Plan(to_run=[(num, list(job)) for num, job in enumerate(jobs)], reasons=["new"] * len(jobs), resume=False)


def plan_resume(jobs: Sequence[Sequence[str]], past: Sequence[PastJob], sweep_dir: Path) -> Plan:
    """Skip each job with a finished past job of the same overrides; rerun an unfinished one at its
    old number (the newest, if several); number new jobs after every past job and numbered dir."""
    by_key: dict[JobKey, list[PastJob]] = {}
    for job in past:
        by_key.setdefault(job_key(job.overrides), []).append(job)
    taken = {job.num for job in past} | {int(p.name) for p in sweep_dir.iterdir() if p.name.isdigit()}
    next_num = max(taken, default=-1) + 1

    plan = Plan()
    for job in jobs:
        # the newest finished past job, else the newest; a grid that repeats a job takes the next one
        candidates = by_key.get(job_key(job), [])
        match = max(candidates, key=lambda p: (p.finished, p.written), default=None)
        if match is None:
            plan.to_run.append((next_num, list(job)))
            plan.reasons.append("new")
            next_num += 1
            continue
        candidates.remove(match)
        if match.finished:
            plan.skipped.append(match)
        else:
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
