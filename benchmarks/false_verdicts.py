"""The "vs best" table's promises by simulation, at more repetitions than the tests use.

Printed, for tables of k configs × n seeds with every config truly equal (paired: the seeds share an
offset, so same-seed results correlate about 0.8; unpaired: independent), the share of tables with
at least one false verdict ('<' or '>'); then with two configs tied for the best and two exactly a
margin below (a '≈' on those is false too); then the power to find one config 1.5 points below two
equal ones. Run: ``OMP_NUM_THREADS=1 python benchmarks/false_verdicts.py [REPS]`` (default 1000).
"""
from __future__ import annotations

import sys

import numpy as np

from sweeplab.report.compare import BETTER, EQUIVALENT, WORSE, Sample, family

MARGIN = 0.5


def verdicts(table: np.ndarray) -> tuple[int, dict[int, str]]:
    """The best row of ``table`` (configs × seeds) and every other row's verdict against it."""
    k, n = table.shape
    best = int(np.argmax(table.mean(axis=1)))
    others = [i for i in range(k) if i != best]
    rows = family([Sample(row, tuple(range(n))) for row in table], [(i, best) for i in others], MARGIN,
                  all_pairs=True)
    return best, dict(zip(others, rows["verdict"], strict=True))


def tables(rng: np.random.Generator, means: np.ndarray, n: int, paired: bool, reps: int) -> np.ndarray:
    shared = rng.standard_normal((reps, 1, n)) if paired else np.zeros((reps, 1, n))
    return means[None, :, None] + shared + 0.5 * rng.standard_normal((reps, len(means), n))


def false_verdict(means: np.ndarray, table: np.ndarray) -> bool:
    best, judged = verdicts(table)
    return any((means[i] == means[best] and verdict in (WORSE, BETTER))
               or (means[i] != means[best] and abs(means[i] - means[best]) >= MARGIN and verdict == EQUIVALENT)
               for i, verdict in judged.items())


def main(reps: int) -> None:
    rng = np.random.default_rng(12345)
    for paired in (True, False):
        for n in (5, 20):
            for k in (3, 10, 15):
                means = np.zeros(k)
                rate = np.mean([false_verdict(means, t) for t in tables(rng, means, n, paired, reps)])
                print(f"all equal, {'paired' if paired else 'unpaired'}, n={n}, k={k}: any false verdict {rate:.3f}")
    for n in (5, 20):
        means = np.array([0.0, 0.0, -MARGIN, -MARGIN])
        rate = np.mean([false_verdict(means, t) for t in tables(rng, means, n, True, reps)])
        print(f"two tied for the best, two a margin below, paired, n={n}: any false verdict {rate:.3f}")
    for n in (5, 10, 20):
        found = np.mean([verdicts(t)[1].get(2) == WORSE
                         for t in tables(rng, np.array([0.0, 0.0, -1.5]), n, True, reps)])
        print(f"power: one config 1.5 points below two equal ones, paired, n={n}: '<' found {found:.3f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
