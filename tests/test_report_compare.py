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
    compare,
    holm,
    judge,
    seeds_needed,
)

SEEDS = (0, 1, 2, 3, 4)


def welch(values: list[float]) -> Sample:
    """A sample without seeds: only Welch's test applies."""
    return Sample(np.array(values))


def test_welch_interval_is_the_hand_computed_one():
    # a: mean 2.5, variance 5/3, n 4 -> 5/12 per mean; b: mean 4, variance 4, n 3 -> 4/3 per mean.
    # se = sqrt(5/12 + 4/3) = sqrt(1.75); Welch-Satterthwaite df = 1.75^2 / ((5/12)^2/3 + (4/3)^2/2) = 3.2347;
    # t(0.975, 3.2347) = 3.0557, so the interval is -1.5 +- 3.0557 * 1.3229 = -1.5 +- 4.0423.
    result = compare(welch([1, 2, 3, 4]), welch([2, 4, 6]))
    assert result["test"] == WELCH
    assert result["difference"] == pytest.approx(-1.5)
    df = 1.75**2 / ((5 / 12) ** 2 / 3 + (4 / 3) ** 2 / 2)
    assert df == pytest.approx(3.2347, abs=1e-4)
    half_width = stats.t.ppf(0.975, df) * math.sqrt(1.75)
    assert (result["ci_low"], result["ci_high"]) == pytest.approx((-1.5 - half_width, -1.5 + half_width))
    assert (result["ci_low"], result["ci_high"]) == pytest.approx((-5.5423, 2.5423), abs=1e-4)
    assert result["p_value"] == pytest.approx(2 * stats.t.sf(1.5 / math.sqrt(1.75), df))


def test_tost_shows_equivalence_of_a_small_difference_measured_tightly():
    # both variances 0.025, n 5: se = sqrt(0.005 + 0.005) = 0.1, df = 8; difference 0.1.
    # The nearer bound: t = (0.1 - 0.5) / 0.1 = -4, so TOST's p is P(T_8 > 4).
    result = compare(welch([80.0, 80.2, 79.9, 80.1, 80.3]), welch([80.1, 79.9, 80.0, 80.2, 79.8]))
    assert result["difference"] == pytest.approx(0.1)
    assert result["p_equivalence"] == pytest.approx(stats.t.sf(4, 8))
    assert result["p_equivalence"] == pytest.approx(0.00197, abs=1e-5)
    judged = judge(pd.DataFrame([result]))
    assert judged["verdict"][0] == EQUIVALENT
    assert math.isnan(judged["seeds_needed"][0])


def test_a_small_difference_measured_loosely_is_inconclusive_and_says_how_many_seeds_would_decide():
    # both variances 0.5, n 5: se = sqrt(0.2), df = 8; difference 0.2.
    # TOST: t = (0.2 - 0.5) / sqrt(0.2) = -0.671, p = P(T_8 > 0.671) = 0.26: not equivalent; nor different.
    result = compare(welch([80.2, 79.2, 81.2, 80.2, 80.2]), welch([79, 80, 80, 80, 81]))
    assert result["p_equivalence"] == pytest.approx(stats.t.sf(0.3 / math.sqrt(0.2), 8))
    assert result["p_value"] > 0.5
    judged = judge(pd.DataFrame([result]))
    assert judged["verdict"][0] == INCONCLUSIVE
    # variance of one seed's share: 0.5 + 0.5 = 1; Welch's df here is 8 for 5 seeds, 2 per seed beyond one.
    # Equivalence (the margin is 0.3 away): (t(0.95, df) + t(0.8, df))^2 * 1 / 0.3^2 with df = 2 (n - 1)
    # is 69.47 at n = 69 (not enough) and 69.46 at n = 70 (enough); with normal quantiles it would be 68.7.
    # Showing the difference would take over (1.96 + 0.84)^2 / 0.2^2 = 196; the fewer decide.
    assert result["variance"] == pytest.approx(1.0) and result["df"] == pytest.approx(8)
    asks = [(stats.t.ppf(0.95, 2 * (n - 1)) + stats.t.ppf(0.8, 2 * (n - 1))) ** 2 / 0.09 for n in (69, 70)]
    assert asks == pytest.approx([69.47, 69.46], abs=0.005)
    assert judged["seeds_needed"][0] == 70


def test_seeds_needed_for_a_difference_beyond_the_margin():
    # paired (df = n - 1), one of three tests (alpha 0.05/3): (t(1 - 0.05/6, n-1) + t(0.8, n-1))^2 * 0.25 / 0.75^2
    # is 7.81 at n = 7 and 7.20 at n = 8; normal quantiles would say 4.65 (z: 2.394 + 0.842)
    asks = {n: (stats.t.ppf(1 - 0.05 / 6, n - 1) + stats.t.ppf(0.8, n - 1)) ** 2 * 0.25 / 0.75**2 for n in (7, 8)}
    assert asks == pytest.approx({7: 7.81, 8: 7.20}, abs=0.01)
    assert seeds_needed(0.75, 0.25, margin=0.5, alpha=0.05 / 3, n_now=3) == 8
    assert seeds_needed(0.75, 0.25, margin=0.5, alpha=0.05 / 3, n_now=8) == 9  # always more than it had


def test_holm_on_a_fixed_set_of_p_values():
    # sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1: 0.02, 0.03, 0.06, 0.04 -> monotone: 0.04 becomes 0.06
    assert list(holm([0.01, 0.04, 0.03, 0.005])) == pytest.approx([0.03, 0.06, 0.06, 0.02])


def comparison_row(p_value: float, p_equivalence: float, difference: float = -1.0) -> dict:
    return {"test": WELCH, "n_a": 5, "n_b": 5, "difference": difference, "ci_low": np.nan, "ci_high": np.nan,
            "p_value": p_value, "p_equivalence": p_equivalence, "variance": 1.0, "df": 8.0, "untested": ""}


def test_verdicts_use_the_holm_adjusted_p_values_of_the_table():
    rows = pd.DataFrame([comparison_row(0.01, 0.9), comparison_row(0.04, 0.9), comparison_row(0.03, 0.9),
                         comparison_row(0.005, 0.9, difference=2.0)])
    judged = judge(rows)
    assert list(judged["p_holm"]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # 0.04 and 0.03 are below 0.05 alone, not after the correction
    assert list(judged["verdict"]) == [WORSE, INCONCLUSIVE, INCONCLUSIVE, BETTER]
    alone = judge(rows.iloc[[1]])
    assert alone["verdict"].iloc[0] == WORSE


def test_pairing_on_shared_seeds_finds_a_difference_that_welch_cannot():
    # seed-to-seed spread of about 2.7 points, shared by both configs; A is 0.2 to 0.4 points higher on every seed
    b = [80.0, 83.0, 78.0, 85.0, 81.0]
    a = [value + lift for value, lift in zip(b, [0.3, 0.4, 0.2, 0.3, 0.35], strict=True)]
    paired = compare(Sample(np.array(a), SEEDS, 1000), Sample(np.array(b), SEEDS, 1000))
    assert paired["test"] == PAIRED
    differences = np.array(a) - np.array(b)
    t = differences.mean() / (differences.std(ddof=1) / math.sqrt(5))
    assert paired["p_value"] == pytest.approx(2 * stats.t.sf(t, 4))
    assert judge(pd.DataFrame([paired]))["verdict"][0] == BETTER

    unpaired = compare(Sample(np.array(a), SEEDS, 1000), Sample(np.array(b), SEEDS, 2000))  # other model shapes
    assert unpaired["test"] == WELCH and unpaired["p_value"] > 0.8
    assert judge(pd.DataFrame([unpaired]))["verdict"][0] == INCONCLUSIVE


def test_pairs_line_up_by_seed_whatever_order_the_jobs_ran_in():
    a = Sample(np.array([81.0, 80.0, 82.0]), (1, 0, 2), 1000)
    b = Sample(np.array([79.5, 80.5, 78.0]), (2, 0, 1), 1000)  # b on seeds 0, 1, 2: 80.5, 78.0, 79.5
    result = compare(a, b)
    assert result["test"] == PAIRED
    assert result["variance"] == pytest.approx(np.var([80.0 - 80.5, 81.0 - 78.0, 82.0 - 79.5], ddof=1))


@pytest.mark.parametrize("seeds_b", [(0, 1, 3), (0, 1, 1), (0, 1, None)])
def test_no_pairing_without_the_same_seeds_each_run_once(seeds_b):
    a = Sample(np.array([80.0, 81.0, 82.0]), (0, 1, 2), 1000)
    b = Sample(np.array([79.0, 80.5, 81.0]), seeds_b, 1000)
    assert compare(a, b)["test"] == WELCH


def test_too_few_seeds_or_no_spread_is_untested_not_a_verdict():
    assert compare(welch([80.0]), welch([79.0, 80.0]))["untested"] == UNTESTED_FEW
    assert compare(welch([80.0, 80.0]), welch([79.0, 79.0]))["untested"] == UNTESTED_FLAT
    same_lift = compare(Sample(np.array([81.0, 83.0]), (0, 1), 10), Sample(np.array([80.0, 82.0]), (0, 1), 10))
    assert same_lift["untested"] == UNTESTED_FLAT  # every seed's difference is the same
    judged = judge(pd.DataFrame([same_lift]))
    assert judged["verdict"][0] == UNTESTED_FLAT and math.isnan(judged["p_holm"][0])
