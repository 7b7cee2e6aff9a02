"""Sweep speed on real FashionMNIST: one grid four ways, wall times and ratios measured in one run.

The grid is issue 7's: lr 0.1, 0.01, 0.001 x seed 0, 1, 2 (9 jobs), 784-64-10 ReLU, SGD, batch 32,
2 epochs, run by

- (a) the seed notes' loop (torchvision dataset, ToTensor, DataLoader; ``trainer_speed.seed_loop``),
  9 times in this process;
- (b) ``python train.py -m ...`` with Hydra's basic launcher (one job after another);
- (c) the same with ``hydra/launcher=pool`` (worker processes that keep torch and the data);
- (d) the same with ``hydra/launcher=fused`` (same-shape jobs trained as one stacked model),
  skipped with a line saying so where that launcher is not installed.

(b) to (d) are timed as a user sees them: the whole command, start-up included. Beside them, the
start-up alone: a Python process that imports torch, Hydra and sweeplab's task, and exits (no
config, no data, no training): the floor under any of (b) to (d). With ``--rounds`` the ways
alternate, so the machine's drift hits them alike; ratios are medians of per-round ratios.
Targets (issue 7): (d) at least 20x faster than (a) and 3x faster than (b).

    python benchmarks/sweep_speed.py                 # one round (~3 min on 2 cores)
    python benchmarks/sweep_speed.py --rounds 3
    python benchmarks/sweep_speed.py --neurons       # also +sweep=neurons (50 jobs) basic, pool, fused: long
    python benchmarks/sweep_speed.py --neurons --launchers basic,fused
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Callable

from trainer_speed import seed_loop, uncompressed_copy

from sweeplab.training.data import find_idx_folder

REPO = Path(__file__).resolve().parents[1]
LRS, SEEDS, WIDTH, BATCH_SIZE = ("0.1", "0.01", "0.001"), ("0", "1", "2"), 64, 32
SEED_LOOP, BASIC, START_UP = "(a) seed loop per job", "(b) basic launcher", "start-up alone"
LAUNCHERS = {BASIC: "basic", "(c) pool launcher": "pool", "(d) fused launcher": "fused"}


def grid_overrides(epochs: int) -> list[str]:
    return [f"lr={','.join(LRS)}", f"seed={','.join(SEEDS)}", f"model.width={WIDTH}",
            f"batch_size={BATCH_SIZE}", f"epochs={epochs}"]


def launcher_available(launcher: str) -> bool:
    """Whether Hydra can compose ``hydra/launcher=<launcher>`` here (its plugin is installed)."""
    command = [sys.executable, str(REPO / "train.py"), f"hydra/launcher={launcher}", "--cfg", "hydra",
               "--package", "hydra.launcher"]
    return subprocess.run(command, cwd=REPO, capture_output=True).returncode == 0


def sweep_seconds(overrides: list[str], sweep_dir: Path) -> float:
    """Wall time of ``python train.py -m OVERRIDES`` into ``sweep_dir``; the run must succeed."""
    command = [sys.executable, str(REPO / "train.py"), "-m", *overrides, f"hydra.sweep.dir={sweep_dir}"]
    tic = time.perf_counter()
    result = subprocess.run(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - tic
    if result.returncode != 0:
        sys.exit(f"failed ({result.returncode}): {' '.join(command[1:])}\n{result.stderr[-2000:]}")
    return seconds


def start_up_seconds() -> float:
    """Wall time of a Python process that imports what every sweep command imports, then exits."""
    tic = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import torch, hydra, sweeplab.job.task"], cwd=REPO, check=True)
    return time.perf_counter() - tic


def seed_loop_seconds(root: Path, epochs: int) -> float:
    """The seed notes' loop, once per grid job: its own dataset objects, model and epochs."""
    tic = time.perf_counter()
    for _ in range(len(LRS) * len(SEEDS)):
        epoch = seed_loop(root, WIDTH, BATCH_SIZE)
        for _ in range(epochs):
            epoch()
    return time.perf_counter() - tic


def print_table(title: str, rounds: list[dict[str, float]], references: list[str]) -> None:
    """Median wall time of each way, and its speed-up over each reference (median of per-round ratios)."""
    print(f"\n{title}")
    print(f"{'':24} {'wall s':>8}" + "".join(f" {'vs ' + ref[:3]:>8}" for ref in references))
    for name in rounds[0]:
        cells = "".join(
            f" {statistics.median(r[ref] / r[name] for r in rounds):>7.1f}x" for ref in references
        )
        print(f"{name:24} {statistics.median(r[name] for r in rounds):>8.1f}{cells}")


def timed_rounds(ways: dict[str, Callable[[int], float]], n_rounds: int) -> list[dict[str, float]]:
    rounds = []
    for round_ in range(1, n_rounds + 1):
        row = {}
        for name, run in ways.items():
            row[name] = run(round_)
            print(f"  round {round_}: {name:24} {row[name]:7.1f} s", flush=True)
        rounds.append(row)
    return rounds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=1, help="interleaved rounds of (a), (b), (c), (d)")
    parser.add_argument("--epochs", type=int, default=2, help="epochs per job (2: the issue's grid)")
    parser.add_argument("--neurons", action="store_true", help="also time +sweep=neurons (50 jobs) per launcher")
    parser.add_argument("--launchers", default=",".join(LAUNCHERS.values()),
                        help="the launchers to time, comma-separated (default: all of basic, pool, fused)")
    args = parser.parse_args()
    out = REPO / "outputs" / "benchmarks" / "sweep_speed" / datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    wanted = args.launchers.split(",")
    unknown = set(wanted) - set(LAUNCHERS.values())
    if unknown:
        parser.error(f"--launchers: unknown {', '.join(sorted(unknown))}; allowed: {', '.join(LAUNCHERS.values())}")
    launchers = {name: launcher for name, launcher in LAUNCHERS.items()
                 if launcher in wanted and launcher_available(launcher)}
    for name in {n for n, launcher in LAUNCHERS.items() if launcher in wanted} - launchers.keys():
        print(f"{name}: skipped, hydra/launcher={LAUNCHERS[name]} is not installed here")
    if BASIC not in launchers:
        parser.error("--launchers must include basic: the ratios are taken against it")

    folder = find_idx_folder("fashion_mnist", "data", "/usr/share/datasets/fashion-mnist", download_ok=False)
    n_jobs = len(LRS) * len(SEEDS)
    print(f"{n_jobs}-job grid: lr {', '.join(LRS)} x seed {', '.join(SEEDS)}; "
          f"784-{WIDTH}-10 ReLU, SGD, batch {BATCH_SIZE}, {args.epochs} epochs; "
          f"FashionMNIST from {folder}; sweeps in {out}")
    with tempfile.TemporaryDirectory() as root:
        uncompressed_copy(folder, Path(root))
        ways: dict[str, Callable[[int], float]] = {SEED_LOOP: lambda _: seed_loop_seconds(Path(root), args.epochs)}
        for name, launcher in launchers.items():
            ways[name] = lambda round_, launcher=launcher: sweep_seconds(
                [f"hydra/launcher={launcher}", *grid_overrides(args.epochs)], out / f"grid_{launcher}_{round_}")
        ways[START_UP] = lambda _: start_up_seconds()
        rounds = timed_rounds(ways, args.rounds)
    print_table(f"{n_jobs}-job grid, {args.rounds} round(s): median wall time and speed-up (targets for (d): "
                ">= 20x vs (a), >= 3x vs (b))", rounds, [SEED_LOOP, BASIC])

    if args.neurons:
        ways = {name: lambda round_, launcher=launcher: sweep_seconds(
                    ["+sweep=neurons", f"hydra/launcher={launcher}"], out / f"neurons_{launcher}_{round_}")
                for name, launcher in launchers.items()}
        rounds = timed_rounds(ways, 1)
        print_table("+sweep=neurons (50 jobs, 5 epochs each): wall time and speed-up", rounds, [BASIC])


if __name__ == "__main__":
    main()
