"""What pruning saves: the same Optuna study on FashionMNIST with and without a pruner, in one run.

Both studies run through the real command (``python train.py -m hydra/sweeper=optuna ...``) with
the same TPE seed, search space, budget and epochs; the only difference is the pruner. Printed:
epochs trained (the work) and best validation accuracy (the result) of each, and their ratios.
Target: at most 50 % of the epochs for a best value within 0.3 points. With one worker, a seeded
sampler and CPU training the reference study repeats exactly from run to run.

    python benchmarks/pruning.py                  # 30 trials of up to 15 epochs: median, successive halving
    python benchmarks/pruning.py --pruners hyperband percentile --n-trials 40
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import optuna

REPO = Path(__file__).resolve().parents[1]
SEARCH_SPACE = [
    "lr=tag(log, interval(1e-4, 3e-1))",
    "optimizer=choice(sgd, sgd_momentum, adam)",
    "model.width=choice(32, 64, 128, 256)",
    "batch_size=choice(64, 128, 256)",
]


# The settings README's numbers were measured with (2026-11-23), where today's defaults (Optuna's own)
# differ: TPE without constant liar, successive halving with reduction factor 3.
MEASURED_WITH = ["hydra.sweeper.sampler.constant_liar=false"]
PRUNER_MEASURED_WITH = {"successive_halving": ["hydra.sweeper.pruner.reduction_factor=3"]}


def run_study(pruner: str, out: Path, n_trials: int, epochs: int) -> tuple[optuna.Study, float]:
    """Run one study; return it (loaded from its SQLite file) and its wall time in seconds."""
    sweep_dir = out / pruner
    command = [
        sys.executable, str(REPO / "train.py"), "-m", "hydra/sweeper=optuna", f"hydra/sweeper/pruner={pruner}",
        f"hydra.sweeper.study_name=pruning_{pruner}", f"hydra.sweep.dir={sweep_dir}",
        f"hydra.sweeper.n_trials={n_trials}", "hydra.sweeper.sampler.seed=0", "hydra.sweeper.direction=maximize",
        *MEASURED_WITH, *PRUNER_MEASURED_WITH.get(pruner, []), f"epochs={epochs}", *SEARCH_SPACE,
    ]
    print(f"running: {' '.join(command[1:])}", flush=True)
    tic = time.perf_counter()
    subprocess.run(command, check=True, cwd=REPO, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - tic
    study = optuna.load_study(study_name=f"pruning_{pruner}", storage=f"sqlite:///{sweep_dir / 'optuna.db'}")
    return study, seconds


def epochs_trained(study: optuna.Study) -> int:
    """Every epoch any trial ran: each reports its validation accuracy once per epoch."""
    return sum(len(trial.intermediate_values) for trial in study.trials)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pruners", nargs="+", default=["median", "successive_halving"],
                        help="hydra/sweeper/pruner options to compare")
    parser.add_argument("--n-trials", type=int, default=30)
    parser.add_argument("--epochs", type=int, default=15)
    args = parser.parse_args()
    out = REPO / "outputs" / "benchmarks" / "pruning" / datetime.now().strftime("%Y-%m-%d_%H-%M-%S")

    rows = {}
    for pruner in ("none", *args.pruners):
        study, seconds = run_study(pruner, out, args.n_trials, args.epochs)
        states = [t.state.name for t in study.trials]
        rows[pruner] = (epochs_trained(study), study.best_value, seconds, states.count("PRUNED"))

    print(f"\n{args.n_trials} trials of up to {args.epochs} epochs each; studies in {out}")
    print(f"{'pruner':>18} {'epochs trained':>15} {'best val acc':>13} {'wall s':>8} {'pruned':>7}")
    for pruner, (epochs, best, seconds, pruned) in rows.items():
        print(f"{pruner:>18} {epochs:>15d} {best:>13.4f} {seconds:>8.0f} {pruned:>7d}")
    base_epochs, base_best, base_seconds, _ = rows["none"]
    print()
    for pruner in args.pruners:
        epochs, best, seconds, _ = rows[pruner]
        print(f"with {pruner}: {epochs / base_epochs:.0%} of the epochs (target <= 50%), {seconds / base_seconds:.0%} "
              f"of the wall time, best value {100 * (best - base_best):+.2f} points (target: within 0.3)")


if __name__ == "__main__":
    main()
