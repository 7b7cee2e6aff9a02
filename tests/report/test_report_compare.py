"""The statistics of a comparison, checked against values computed by hand (numbers in points)."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from sweeplab.report.compare import (
    BETTER,
    EQUIVALENT,
    INCONCLUSIVE,
    PAIRED,
    UNTESTED_FEW,
    UNTESTED_FLAT,
    WELCH,
    WORSE,
    Sample,
    family,
    seeds_needed,
)

SEEDS = (0, 1, 2, 3, 4)


def welch(values: list[float]) -> Sample:
    """A sample without seeds: only Welch's test applies."""
    return Sample(np.array(values))


def one(a: Sample, b: Sample) -> pd.Series:
    """a against b, a family of one comparison (its interval is the plain 95 % one)."""
    return family([a, b], [(0, 1)]).iloc[0]


def test_welch_interval_is_the_hand_computed_one():
    # a: mean 2.5, variance 5/3, n 4 -> 5/12 per mean; b: mean 4, variance 4, n 3 -> 4/3 per mean.
    # se = sqrt(5/12 + 4/3) = sqrt(1.75); Welch-Satterthwaite df = 1.75^2 / ((5/12)^2/3 + (4/3)^2/2) = 3.2347;
    # t(0.975, 3.2347) = 3.0557, so the interval is -1.5 +- 3.0557 * 1.3229 = -1.5 +- 4.0423.
    result = one(welch([1, 2, 3, 4]), welch([2, 4, 6]))
    assert result["test"] == WELCH
    assert result["difference"] == pytest.approx(-1.5)
    df = 1.75**2 / ((5 / 12) ** 2 / 3 + (4 / 3) ** 2 / 2)
    assert df == pytest.approx(3.2347, abs=1e-4)
    assert (result["ci_low"], result["ci_high"]) == pytest.approx((-5.5423, 2.5423), abs=1e-4)
    assert result["p_value"] == pytest.approx(2 * stats.t.sf(1.5 / math.sqrt(1.75), df))


def test_tost_shows_equivalence_of_a_small_difference_measured_tightly():
    # both variances 0.025, n 5: se = sqrt(0.005 + 0.005) = 0.1, df = 8; difference 0.1.
    # The nearer bound: t = (0.1 - 0.5) / 0.1 = -4, so TOST's p is P(T_8 > 4); the 95 % interval
    # 0.1 +- 2.306 * 0.1 lies inside +-0.5.
    result = one(welch([80.0, 80.2, 79.9, 80.1, 80.3]), welch([80.1, 79.9, 80.0, 80.2, 79.8]))
    assert result["difference"] == pytest.approx(0.1)
    assert result["p_equivalence"] == pytest.approx(stats.t.sf(4, 8))
    assert result["p_equivalence_adjusted"] == pytest.approx(2 * stats.t.sf(4, 8))  # both bounds of one interval
    assert result["verdict"] == EQUIVALENT and result["within_margin"]
    assert math.isnan(result["seeds_needed"])


def test_a_small_difference_measured_loosely_is_inconclusive_and_says_how_many_seeds_would_decide():
    # both variances 0.5, n 5: se = sqrt(0.2), df = 8; difference 0.2: the interval 0.2 +- 1.03 is neither.
    result = one(welch([80.2, 79.2, 81.2, 80.2, 80.2]), welch([79, 80, 80, 80, 81]))
    assert result["verdict"] == INCONCLUSIVE
    # variance of one seed's share: 0.5 + 0.5 = 1 (no seeds shared); Welch's df is 8 for 5 seeds, 2 per seed.
    # Equivalence (the margin is 0.3 away), with both bounds inside: (t(0.975, df) + t(0.8, df))^2 / 0.3^2
    assert result["variance"] == pytest.approx(1.0) and result["df"] == pytest.approx(8)
    n = int(result["seeds_needed"])
    asks = {m: (stats.t.ppf(0.975, 2 * (m - 1)) + stats.t.ppf(0.8, 2 * (m - 1))) ** 2 / 0.09 for m in (n - 1, n)}
    assert asks[n - 1] > n - 1 and asks[n] <= n


def test_seeds_needed_for_a_difference_beyond_the_margin():
    # paired (df = n - 1), one of three tests (alpha 0.05/3): (t(1 - 0.05/6, n-1) + t(0.8, n-1))^2 * 0.25 / 0.75^2
    # is 7.81 at n = 7 and 7.20 at n = 8; normal quantiles would say 4.65 (z: 2.394 + 0.842)
    asks = {n: (stats.t.ppf(1 - 0.05 / 6, n - 1) + stats.t.ppf(0.8, n - 1)) ** 2 * 0.25 / 0.75**2 for n in (7, 8)}
    assert asks == pytest.approx({7: 7.81, 8: 7.20}, abs=0.01)
    assert seeds_needed(0.75, 0.25, margin=0.5, alpha=0.05 / 3, n_now=3) == 8
    assert seeds_needed(0.75, 0.25, margin=0.5, alpha=0.05 / 3, n_now=8) == 9  # always more than it had


def test_a_family_of_p_comparisons_uses_intervals_at_alpha_over_p():
    rng = np.random.default_rng(0)
    samples = [Sample(80 + rng.standard_normal(6), tuple(range(6))) for _ in range(4)]
    shown = [(1, 0), (2, 0), (3, 0)]
    alone = family(samples, shown)
    every_pair = family(samples, shown, all_pairs=True)  # 4 configs: 6 pairs
    for rows, pairs in ((alone, 3), (every_pair, 6)):
        assert list(rows["level"]) == pytest.approx([0.05 / pairs] * 3)
        assert list(rows["p_adjusted"]) == pytest.approx(list(np.minimum(1, pairs * rows["p_value"])))
    # the same standard errors, wider quantiles: t(1 - 0.05/12) over t(1 - 0.05/6)
    widening = stats.t.ppf(1 - 0.05 / 12, alone["df"]) / stats.t.ppf(1 - 0.05 / 6, alone["df"])
    assert list(every_pair["ci_high"] - every_pair["difference"]) == pytest.approx(
        list((alone["ci_high"] - alone["difference"]) * widening))


def test_pairing_on_shared_seeds_whatever_the_shapes_finds_a_difference_that_welch_cannot():
    # seed-to-seed spread of about 2.7 points, shared by both configs; A is 0.2 to 0.4 points higher on every seed
    b = [80.0, 83.0, 78.0, 85.0, 81.0]
    a = [value + lift for value, lift in zip(b, [0.3, 0.4, 0.2, 0.3, 0.35], strict=True)]
    paired = one(Sample(np.array(a), SEEDS), Sample(np.array(b), SEEDS))
    assert paired["test"] == PAIRED
    assert paired["p_value"] == pytest.approx(stats.ttest_rel(a, b).pvalue)
    assert paired["variance"] == pytest.approx(np.var(np.array(a) - np.array(b), ddof=1))  # the paired spread
    assert paired["verdict"] == BETTER
    unpaired = one(welch(a), welch(b))
    assert unpaired["test"] == WELCH and unpaired["p_value"] > 0.8 and unpaired["verdict"] == INCONCLUSIVE


def test_extra_seeds_count_for_their_own_config_and_the_shared_ones_pair():
    # a ran seeds 0-7, b seeds 0-4: the means are over all their seeds; the variance of the difference is
    # var_a/8 + var_b/5 - 2 * 5 * cov_ab / (8 * 5), cov over seeds 0-4
    rng = np.random.default_rng(3)
    offsets = 3 * rng.standard_normal(8)
    a_values = offsets + 0.3 * rng.standard_normal(8) + 1.0
    b_values = offsets[:5] + 0.3 * rng.standard_normal(5)
    result = one(Sample(a_values, tuple(range(8))), Sample(b_values, tuple(range(5))))
    assert result["test"] == f"{PAIRED} on 5 of the seeds" and result["n_shared"] == 5
    assert result["difference"] == pytest.approx(a_values.mean() - b_values.mean())
    cov = np.cov(a_values[:5], b_values)[0, 1]
    se = math.sqrt(a_values.var(ddof=1) / 8 + b_values.var(ddof=1) / 5 - 2 * 5 * cov / 40)
    assert result["ci_high"] - result["difference"] == pytest.approx(stats.t.ppf(0.975, 4) * se)
    assert result["variance"] == pytest.approx(a_values.var(ddof=1) + b_values.var(ddof=1) - 2 * cov)


def test_pairs_line_up_by_seed_whatever_order_the_jobs_ran_in():
    a = Sample(np.array([81.0, 80.0, 82.0]), (1, 0, 2))
    b = Sample(np.array([79.5, 80.5, 78.0]), (2, 0, 1))  # b on seeds 0, 1, 2: 80.5, 78.0, 79.5
    result = one(a, b)
    assert result["test"] == PAIRED
    assert result["variance"] == pytest.approx(np.var([80.0 - 80.5, 81.0 - 78.0, 82.0 - 79.5], ddof=1))


@pytest.mark.parametrize("seeds_b", [(0, 5, 3), (0, 0, 1), (0, None, 7)])
def test_no_pairing_without_two_shared_seeds_each_run_once(seeds_b):
    a = Sample(np.array([80.0, 81.0, 82.0]), (0, 1, 2))
    b = Sample(np.array([79.0, 80.5, 81.0]), seeds_b)
    assert one(a, b)["test"] == WELCH


def test_too_few_seeds_or_no_spread_is_untested_not_a_verdict():
    assert one(welch([80.0]), welch([79.0, 80.0]))["verdict"] == UNTESTED_FEW
    assert one(welch([80.0, 80.0]), welch([79.0, 79.0]))["verdict"] == UNTESTED_FLAT
    same_lift = one(Sample(np.array([81.0, 83.0]), (0, 1)), Sample(np.array([80.0, 82.0]), (0, 1)))
    assert same_lift["verdict"] == UNTESTED_FLAT  # every seed's difference is the same
    assert math.isnan(same_lift["p_adjusted"])


def test_a_worse_config_is_worse():
    result = one(Sample(np.array([70.0, 71.0, 70.5]), (0, 1, 2)), Sample(np.array([80.0, 80.5, 81.0]), (0, 1, 2)))
    assert result["verdict"] == WORSE
