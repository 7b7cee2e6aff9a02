"""The cost of a job beside its training, as a sweep grows: wall time, marginal ms per job, peak memory.

Each way runs N jobs, one thread per process, on ``data=synthetic epochs=1 model.width=64``, where a
job's training takes a few milliseconds, so what is measured is the per-job bookkeeping:

- a trivial Hydra app (its task returns ``cfg.seed``) with Hydra's basic launcher: Hydra's own floor;
- ``python train.py -m ...`` with the basic launcher;
- ``python train.py -m ... hydra/launcher=fused`` (one stacked group, or a few);
- an Optuna study of N trials of ``lr`` and ``seed``, ``hydra.sweeper.fuse=20``, its default SQLite storage in
  the sweep dir: asking, telling and storage writes included; with its default TPE sampler (whose work per
  trial grows with the study), and with the random sampler (which reads no trials).

The grid ways' jobs differ only in ``seed=range(0,N)``.

The marginal cost per job between two sizes is ``(t(N2) - t(N1)) / (N2 - N1)``: start-up cancels out.
Peak memory is the maximum resident set of the sweep's process tree (``wait4``'s ``ru_maxrss``).

    python benchmarks/sweep_scale.py                  # N = 20, 100, 1000 (~15 min on 2 cores)
    python benchmarks/sweep_scale.py --sizes 20,100   # quicker
    python benchmarks/sweep_scale.py --big            # also N = 5000
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TRIVIAL_APP = '''\
import hydra
from hydra.core.config_store import ConfigStore

ConfigStore.instance().store(name="trivial", node={"seed": 0})


@hydra.main(version_base="1.3", config_path=None, config_name="trivial")
def main(cfg):
    return cfg.seed


if __name__ == "__main__":
    main()
'''
TINY_JOB = ["data=synthetic", "epochs=1", "model.width=64"]
SEEDS = "seed=range(0,{n})"  # {n}: the sweep's size N
OPTUNA = [*TINY_JOB, "hydra/sweeper=optuna", "hydra.sweeper.n_trials={n}", "hydra.sweeper.fuse=20",
          "lr=interval(0.01,0.1)", "seed=range(0,1000)"]
# name: (what it is, its overrides)
WAYS = {
    "trivial": ("a trivial Hydra app, basic launcher", [SEEDS]),
    "basic": ("train.py, basic launcher", [SEEDS, *TINY_JOB]),
    "fused": ("train.py, fused launcher", [SEEDS, *TINY_JOB, "hydra/launcher=fused"]),
    "optuna": ("train.py, Optuna fuse=20 (TPE)", OPTUNA),
    "optuna_random": ("train.py, Optuna fuse=20 (random)", [*OPTUNA, "hydra/sweeper/sampler=random"]),
}


def run_sweep(app: Path, overrides: list[str], n_jobs: int, sweep_dir: Path) -> tuple[float, float]:
    """Wall seconds and peak resident MB of ``python APP -m OVERRIDES`` (``{n}`` in them: ``n_jobs``); it must
    succeed."""
    overrides = [override.replace("{n}", str(n_jobs)) for override in overrides]
    command = [sys.executable, str(app), "-m", *overrides, f"hydra.sweep.dir={sweep_dir}"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    tic = time.perf_counter()
    with open(sweep_dir.with_suffix(".log"), "w") as log:
        proc = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - tic
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"failed: {' '.join(command[1:])}\n{sweep_dir.with_suffix('.log').read_text()[-2000:]}")
    return seconds, usage.ru_maxrss / 1024  # Linux reports kilobytes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="20,100,1000", help="sweep sizes N, comma-separated")
    parser.add_argument("--big", action="store_true", help="also N = 5000")
    parser.add_argument("--ways", default=",".join(WAYS), help="comma-separated, of: " + ", ".join(WAYS))
    args = parser.parse_args()
    sizes = sorted({int(n) for n in args.sizes.split(",")} | ({5000} if args.big else set()))
    ways = [way.strip() for way in args.ways.split(",")]
    unknown = set(ways) - set(WAYS)
    if unknown:
        parser.error(f"--ways: unknown {', '.join(sorted(unknown))}; allowed: {', '.join(WAYS)}")
    out = REPO / "outputs" / "benchmarks" / "sweep_scale" / datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    out.mkdir(parents=True)
    print(f"N jobs per way; {' '.join(TINY_JOB)}; one thread per process; sweeps in {out}")
    with tempfile.TemporaryDirectory() as tmp:
        trivial = Path(tmp) / "trivial_app.py"
        trivial.write_text(TRIVIAL_APP)
        results: dict[str, dict[int, tuple[float, float]]] = {}
        for way in ways:
            app = trivial if way == "trivial" else REPO / "train.py"
            results[way] = {}
            for n in sizes:
                results[way][n] = run_sweep(app, WAYS[way][1], n, out / f"{way}_{n}")
                print(f"  {WAYS[way][0]:36} N={n:<5} {results[way][n][0]:8.1f} s  peak {results[way][n][1]:7.0f} MB",
                      flush=True)

    steps = list(zip(sizes[:-1], sizes[1:], strict=True))
    print(f"\n{'way':36}" + "".join(f" {'N=' + str(n):>9}" for n in sizes)
          + "".join(f" {f'ms/job {a}->{b}':>16}" for a, b in steps) + f" {'peak MB':>8}")
    for way, by_n in results.items():
        walls = "".join(f" {by_n[n][0]:8.1f}s" for n in sizes)
        marginal = "".join(f" {1000 * (by_n[b][0] - by_n[a][0]) / (b - a):16.0f}" for a, b in steps)
        print(f"{WAYS[way][0]:36}{walls}{marginal} {max(peak for _, peak in by_n.values()):8.0f}")


if __name__ == "__main__":
    main()
