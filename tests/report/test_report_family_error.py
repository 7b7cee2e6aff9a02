"""The promise of a "vs best" table, checked by simulation: with every config truly equal, the chance
of even one false verdict is at most alpha (within Monte Carlo error), paired or not, for small and
large tables; a known shift is found."""
from __future__ import annotations

import numpy as np
import pytest

from sweeplab.report.compare import ALPHA, BETTER, EQUIVALENT, WORSE, Sample, family

pytestmark = pytest.mark.slow  # a few hundred simulated tables per case

REPS = 300
MARGIN = 0.5
# the rate may exceed alpha by three Monte Carlo standard errors before the test calls it a failure
TOLERANCE = 3 * np.sqrt(ALPHA * (1 - ALPHA) / REPS)


def against_best(values: np.ndarray) -> list[str]:
    """The verdicts of a table of configs (rows of ``values``, one column per seed) against its best."""
    k, n = values.shape
    samples = [Sample(row, tuple(range(n))) for row in values]
    best = int(np.argmax(values.mean(axis=1)))
    shown = [(i, best) for i in range(k) if i != best]
    return list(family(samples, shown, MARGIN, all_pairs=True)["verdict"])


def tables(rng: np.random.Generator, means: np.ndarray, n: int, paired: bool) -> np.ndarray:
    """REPS tables: per seed a shared offset when paired (same-seed results correlate about 0.8), plus
    each config's own noise."""
    shared = rng.standard_normal((REPS, 1, n)) if paired else np.zeros((REPS, 1, n))
    return means[None, :, None] + shared + 0.5 * rng.standard_normal((REPS, len(means), n))


@pytest.mark.parametrize("paired", [True, False])
@pytest.mark.parametrize("n", [5, 20])
@pytest.mark.parametrize("k", [3, 10, 15])
def test_equal_configs_get_a_false_verdict_at_most_alpha_of_the_time(k, n, paired):
    rng = np.random.default_rng(1000 * k + n + paired)
    values = tables(rng, np.zeros(k), n, paired)
    false = [any(v in (WORSE, BETTER) for v in against_best(table)) for table in values]
    assert np.mean(false) <= ALPHA + TOLERANCE


@pytest.mark.parametrize("n", [5, 20])
def test_difference_and_equivalence_verdicts_share_alpha(n):
    # two configs tied for the best ("<" on either is false) and two exactly a margin below it ("≈" on
    # them is false): both kinds of false verdict are possible at once, and together stay within alpha
    means = np.array([0.0, 0.0, -MARGIN, -MARGIN])
    values = tables(np.random.default_rng(n), means, n, paired=True)
    false = []
    for table in values:
        best = int(np.argmax(table.mean(axis=1)))
        others = [i for i in range(len(means)) if i != best]
        verdicts = dict(zip(others, against_best(table), strict=True))
        false.append(any((means[i] == means[best] and verdicts[i] in (WORSE, BETTER))
                         or (means[i] != means[best] and verdicts[i] == EQUIVALENT) for i in others))
    assert np.mean(false) <= ALPHA + TOLERANCE


def test_a_known_shift_is_found():
    # one config 1.5 points below two equal ones; the seeds' shared offset cancels in the paired spread
    means = np.array([0.0, 0.0, -1.5])
    values = tables(np.random.default_rng(7), means, 10, paired=True)
    found = []
    for table in values:
        best = int(np.argmax(table.mean(axis=1)))
        verdicts = dict(zip([i for i in range(3) if i != best], against_best(table), strict=True))
        found.append(verdicts.get(2) == WORSE)
    assert np.mean(found) >= 0.8
