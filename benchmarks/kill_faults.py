"""Fault injection: kill a sweep's parent or one of its workers with SIGKILL at a random moment, rerun
the same command to resume, and count what went wrong.

For each scenario (a tiny grid on the basic, pool and fused launchers; a tiny Optuna study with
n_workers=2) and each of ``--kills`` rounds: start the sweep into a fresh dir, kill -9 the parent or a
random worker after a random delay, wait for what is left to end, then rerun the same command to the
end. Prints per scenario:

- kills (a round whose sweep ended before its kill moment counts none), resumes (reruns that ended
  with exit code 0);
- jobs lost: jobs (trials) of the sweep that are not finished after the resume;
- finished jobs rerun: jobs finished before the resume whose metrics.json the resume rewrote;
- orphans: processes of the killed sweep still alive ORPHAN_SECONDS after its parent ended;
- hangs: runs still going after --timeout seconds (killed with their session).

    python benchmarks/kill_faults.py --kills 3            # every scenario, 3 kills each
    python benchmarks/kill_faults.py --kills 20 --only grid-pool --seed 1
"""
from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TINY = ["data=synthetic", "data.n_train=600", "data.n_test=200", "epochs=3", "batch_size=64", "threads=1"]
GRID = ["lr=0.1,0.05", "seed=0,1,2"]  # 6 jobs
STUDY = ["hydra/sweeper=optuna", "hydra.sweeper.n_trials=6", "hydra.sweeper.n_workers=2",
         "hydra/sweeper/sampler=random", "hydra.sweeper.sampler.seed=0", "lr=interval(0.01, 0.1)"]
SCENARIOS = {
    "grid-basic": GRID,
    "grid-pool": GRID + ["hydra/launcher=pool", "hydra.launcher.n_workers=2"],
    "grid-fused": GRID + ["hydra/launcher=fused"],
    "optuna-2-workers": STUDY,
}
FINISHED = {"ok", "diverged", "pruned", "failed"}
ORPHAN_SECONDS = 10.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=3, help="kills per scenario")
    parser.add_argument("--only", choices=sorted(SCENARIOS), action="append", help="run only these scenarios")
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill moments and targets")
    parser.add_argument("--timeout", type=float, default=300, help="seconds before a run counts as hung")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    print(f"{'scenario':<18}{'kills':>6}{'resumes':>8}{'lost':>6}{'rerun':>7}{'orphans':>9}{'hangs':>7}", flush=True)
    for name in args.only or SCENARIOS:
        totals = dict(kills=0, resumes=0, lost=0, rerun=0, orphans=0, hangs=0)
        window = 0.9 * clean_run_seconds(name, args.timeout)  # the kills land within an uninterrupted run
        for _ in range(args.kills):
            with tempfile.TemporaryDirectory(prefix="kill_faults_") as tmp:
                for key, value in kill_round(name, Path(tmp), rng, window, args.timeout).items():
                    totals[key] += value
        print(f"{name:<18}{totals['kills']:>6}{totals['resumes']:>8}{totals['lost']:>6}{totals['rerun']:>7}"
              f"{totals['orphans']:>9}{totals['hangs']:>7}", flush=True)


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
    counts = dict(kills=0, resumes=0, lost=0, rerun=0, orphans=0, hangs=0)
    marker = f"hydra.sweep.dir={sweep_dir}"
    proc = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    time.sleep(rng.uniform(0.3, window))
    workers = [pid for pid in processes(marker) if pid != proc.pid]
    target = proc.pid if not workers or rng.random() < 0.5 else rng.choice(workers)
    if proc.poll() is None:
        with_suppressed(os.kill, target, signal.SIGKILL)
        counts["kills"] += 1
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        counts["hangs"] += 1
        with_suppressed(os.killpg, proc.pid, signal.SIGKILL)
        proc.wait()
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
    try:
        counts["resumes"] += resumed.wait(timeout=timeout) == 0
    except subprocess.TimeoutExpired:
        counts["hangs"] += 1
        with_suppressed(os.killpg, resumed.pid, signal.SIGKILL)
        resumed.wait()
    after = finished_jobs(sweep_dir)
    counts["rerun"] += sum(1 for job, mtime in before.items() if after.get(job) != mtime)
    counts["lost"] += max(0, 6 - finished_count(sweep_dir, name, after))
    return counts


def finished_count(sweep_dir: Path, name: str, jobs: dict[str, int]) -> int:
    """A grid's finished job dirs; a study's finished trials (its budget, 6 either way)."""
    if not name.startswith("optuna"):
        return len(jobs)
    with sqlite3.connect(sweep_dir / "optuna.db") as db:
        query = "select count(*) from trials where state in ('COMPLETE', 'PRUNED', 'FAIL')"
        return db.execute(query).fetchone()[0]


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
