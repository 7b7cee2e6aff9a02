"""Fault injection: kill a sweep's parent or one of its workers with SIGKILL at a random moment, rerun
the same command to resume, and count what went wrong.

For each scenario (a 6-job grid and a 6-trial Optuna study on every local launcher: basic (train.py's
sequential launcher), pool and fused, Optuna's ``fuse=3`` with its TPE and grid samplers) and each of
``--kills`` rounds: start the sweep into a fresh dir, kill -9 the parent or a random worker after a
random delay, wait for what is left to end, then rerun the same command to the end. Prints one row per
scenario:

- kills (a round whose sweep ended before its kill moment counts none), resumes (reruns that ended
  with exit code 0);
- lost: jobs of the grid not finished after the resume; for a study, finished trials short of n_trials
  (with the grid sampler: points never run);
- rerun: finished jobs run again by the resume: a job whose metrics.json it rewrote; a trial whose job
  had finished before the resume but that the study counts interrupted (so its params ran again); a
  grid sampler's point run twice;
- orphans: processes of the killed sweep still alive ORPHAN_SECONDS after its parent ended;
- hangs: runs still going after --timeout seconds (killed with their session);
- miscounted: how far ``sweeplab report``'s job counts (jobs.csv) are from the sweep's own: a grid's
  size; a study's COMPLETE, PRUNED and failed trials in its storage, and a budget overrun.

Progress (one line per round) goes to stderr, the table to stdout.

    python benchmarks/kill_faults.py --kills 3            # every scenario, 3 kills each
    python benchmarks/kill_faults.py --kills 20 --only grid-pool --seed 1
"""
from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna

from sweeplab.job.trial import FAIL_REASON, JOB_DIR
from sweeplab.report.collect import collect

REPO = Path(__file__).resolve().parents[1]
TINY = ["data=synthetic", "data.n_train=600", "data.n_test=200", "epochs=3", "batch_size=64", "threads=1"]
JOBS = 6  # every sweep's size: the grid's jobs, the study's n_trials
GRID = ["lr=0.1,0.05", "seed=0,1,2"]
# short heartbeats, so a resume finds a killed worker's trials soon
STUDY = ["hydra/sweeper=optuna", f"hydra.sweeper.n_trials={JOBS}", "hydra.sweeper.heartbeat_interval=1",
         "hydra.sweeper.grace_period=5"]
RANDOM = ["hydra/sweeper/sampler=random", "hydra.sweeper.sampler.seed=0", "lr=interval(0.01, 0.1)"]
POOL = ["hydra/launcher=pool", "hydra.launcher.n_workers=2"]
SCENARIOS = {
    "grid-basic": GRID,
    "grid-pool": GRID + POOL,
    "grid-fused": GRID + ["hydra/launcher=fused"],
    "optuna-2-workers": STUDY + RANDOM + ["hydra.sweeper.n_workers=2"],
    "optuna-pool": STUDY + RANDOM + ["hydra.sweeper.n_workers=2"] + POOL,
    "optuna-fused": STUDY + ["hydra/sweeper/sampler=tpe", "hydra.sweeper.sampler.seed=0", "hydra.sweeper.fuse=3",
                             "hydra.sweeper.n_workers=2", "lr=interval(0.01, 0.1)"],
    "optuna-grid-fused": STUDY + ["hydra/sweeper/sampler=grid", "hydra.sweeper.sampler.seed=0",
                                  "hydra.sweeper.fuse=3", "lr=choice(0.1, 0.05, 0.02)", "seed=choice(0, 1)"],
}
FINISHED = {"ok", "diverged", "pruned", "failed"}
COLUMNS = ("kills", "resumes", "lost", "rerun", "orphans", "hangs", "miscounted")
ORPHAN_SECONDS = 10.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=3, help="kills per scenario")
    parser.add_argument("--only", choices=sorted(SCENARIOS), action="append", help="run only these scenarios")
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill moments and targets")
    parser.add_argument("--timeout", type=float, default=300, help="seconds before a run counts as hung")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    print(f"{'scenario':<18}" + "".join(f"{column:>11}" for column in COLUMNS), flush=True)
    for name in args.only or SCENARIOS:
        totals = dict.fromkeys(COLUMNS, 0)
        window = 0.9 * clean_run_seconds(name, args.timeout)  # the kills land within an uninterrupted run
        for round_ in range(1, args.kills + 1):
            with tempfile.TemporaryDirectory(prefix="kill_faults_") as tmp:
                counts = kill_round(name, Path(tmp), rng, window, args.timeout)
            for key, value in counts.items():
                totals[key] += value
            print(f"{name} round {round_}/{args.kills}: {counts}", file=sys.stderr, flush=True)
        print(f"{name:<18}" + "".join(f"{totals[column]:>11}" for column in COLUMNS), flush=True)


def command_of(name: str, sweep_dir: Path) -> list[str]:
    return [sys.executable, str(REPO / "train.py"), "-m", *SCENARIOS[name], *TINY, f"hydra.sweep.dir={sweep_dir}"]


def clean_run_seconds(name: str, timeout: float) -> float:
    with tempfile.TemporaryDirectory(prefix="kill_faults_") as tmp:
        started = time.monotonic()
        subprocess.run(command_of(name, Path(tmp) / "sweep"), cwd=tmp, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=timeout, check=True)
        return time.monotonic() - started


def kill_round(name: str, cwd: Path, rng: random.Random, window: float, timeout: float) -> dict[str, int]:
    """One kill at a random moment of a fresh sweep, then its resume; the counts of what went wrong."""
    sweep_dir = cwd / "sweep"
    command = command_of(name, sweep_dir)
    counts = dict.fromkeys(COLUMNS, 0)
    marker = f"hydra.sweep.dir={sweep_dir}"
    proc = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    time.sleep(rng.uniform(0.3, window))
    workers = [pid for pid in processes(marker) if pid != proc.pid]
    target = proc.pid if not workers or rng.random() < 0.5 else rng.choice(workers)
    if proc.poll() is None:
        with_suppressed(os.kill, target, signal.SIGKILL)
        counts["kills"] += 1
    counts["hangs"] += wait_or_kill(proc, timeout)
    deadline = time.monotonic() + ORPHAN_SECONDS
    while processes(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = processes(marker)
    counts["orphans"] += len(left)
    for pid in left:  # not to disturb the resume
        with_suppressed(os.kill, pid, signal.SIGKILL)

    before = finished_jobs(sweep_dir)
    resumed = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    hung = wait_or_kill(resumed, timeout)
    counts["hangs"] += hung
    counts["resumes"] += not hung and resumed.returncode == 0
    after = finished_jobs(sweep_dir)
    reported = collect([sweep_dir]).jobs["status"].value_counts()
    counts["rerun"] += sum(1 for job, mtime in before.items() if after.get(job) != mtime)
    if name.startswith("optuna"):
        for key, value in study_counts(sweep_dir, before, reported, grid="grid" in name).items():
            counts[key] += value
    else:
        counts["lost"] += max(0, JOBS - len(after))
        counts["miscounted"] += abs(JOBS - int(reported.reindex(sorted(FINISHED), fill_value=0).sum()))
    return counts


def study_counts(sweep_dir: Path, before: dict[str, int], reported, grid: bool) -> dict[str, int]:
    """lost, rerun and miscounted of a study, from its storage (the budget counts COMPLETE, PRUNED and
    failed trials; a FAIL without a failure reason is an interrupted trial, run again). ``grid``: the
    grid sampler's study, where each point must run once (a point run twice is rerun, one never is lost)."""
    study = optuna.load_study(study_name=None, storage=f"sqlite:///{sweep_dir / 'optuna.db'}")
    trials = study.get_trials(deepcopy=False)
    states = {"ok": [t for t in trials if t.state.name == "COMPLETE"],
              "pruned": [t for t in trials if t.state.name == "PRUNED"],
              "failed": [t for t in trials if t.state.name == "FAIL" and FAIL_REASON in t.user_attrs]}
    finished = sum(len(of_state) for of_state in states.values())
    interrupted_jobs = {Path(t.user_attrs[JOB_DIR]).name for t in trials
                        if t.state.name == "FAIL" and FAIL_REASON not in t.user_attrs and JOB_DIR in t.user_attrs}
    reported_failed = int(reported.get("failed", 0) + reported.get("diverged", 0))
    miscounted = (abs(int(reported.get("ok", 0)) - len(states["ok"])) + abs(reported_failed - len(states["failed"]))
                  + abs(int(reported.get("pruned", 0)) - len(states["pruned"])) + max(0, finished - JOBS))
    points = len({tuple(sorted(t.params.items())) for of_state in states.values() for t in of_state})
    twice = finished - points if grid else 0
    return dict(lost=max(0, JOBS - finished + twice), rerun=len(interrupted_jobs & set(before)) + twice,
                miscounted=miscounted)


def wait_or_kill(proc: subprocess.Popen, timeout: float) -> int:
    """Wait for ``proc``; 1 (a hang) when it outlives ``timeout``, then killed with its session."""
    try:
        proc.wait(timeout=timeout)
        return 0
    except subprocess.TimeoutExpired:
        with_suppressed(os.killpg, proc.pid, signal.SIGKILL)
        proc.wait()
        return 1


def finished_jobs(sweep_dir: Path) -> dict[str, int]:
    """Job dir -> metrics.json's mtime, for every job that finished."""
    jobs = {}
    for path in sweep_dir.glob("*/metrics.json"):
        try:
            if json.loads(path.read_text()).get("status") in FINISHED:
                jobs[path.parent.name] = path.stat().st_mtime_ns
        except (OSError, ValueError):
            pass
    return jobs


def processes(marker: str) -> list[int]:
    """Live processes (not zombies) whose command line holds ``marker``."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if marker.encode() in cmdline.read_bytes():
                found.append(int(cmdline.parent.name))
        except OSError:
            pass
    return found


def with_suppressed(function, *args) -> None:
    try:
        function(*args)
    except ProcessLookupError:
        pass


if __name__ == "__main__":
    main()
