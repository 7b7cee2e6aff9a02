"""Two configs compared over their seeds, and a family of such comparisons judged together.

Each comparison is an effect (mean difference in accuracy points) with its 95 % interval, a test of
difference (H0: no difference) and a test of equivalence (TOST, H0: the difference is at least the
margin). The tests are paired t-tests when both configs ran the same seeds with the same model shape
(then seed s means the same initial weights and the same data order in both, so the per-seed
difference removes that shared noise; pairing by seed would be valid for any configs, this is where
it pays), Welch's t-tests otherwise. A family of comparisons (one table)
gets Holm-adjusted p-values, and each comparison one of three verdicts:

- ``>`` or ``<``: the Holm-adjusted p of the difference test is below ``alpha``;
- ``≈``: not that, and the Holm-adjusted TOST p is below ``alpha`` (the difference lies within
  ± margin);
- ``inconclusive``: neither; ``seeds_needed`` says how many seeds per config would likely decide it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Hashable, Sequence

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.multitest import multipletests

from sweeplab.report import MARGIN

ALPHA = 0.05
CONFIDENCE = 0.95  # the intervals shown: per comparison, not adjusted for the family
POWER = 0.8  # the chance of a decision that seeds_needed plans for
PAIRED, WELCH = "paired", "Welch"
BETTER, WORSE, EQUIVALENT, INCONCLUSIVE = ">", "<", "≈", "inconclusive"
UNTESTED_FEW, UNTESTED_FLAT = "untested: n<2", "untested: no seed-to-seed spread"
METHOD = (
    f"{PAIRED}: a paired t-test (scipy.stats.ttest_rel) on the per-seed differences, when both configs ran the "
    "same seeds and have the same number of parameters (the same layer shapes: seed s gives both the same "
    f"initial weights and the same data order); otherwise {WELCH}'s t-test (scipy.stats.ttest_ind with "
    "equal_var=False, Welch–Satterthwaite degrees of freedom)"
)
HOLM_WHY = (
    "Holm's step-down correction (statsmodels multipletests), which bounds the chance of even one false "
    "verdict in the table (family-wise error rate) whatever the dependence between comparisons: each "
    "verdict is a statement a reader takes on its own, so a false-discovery rate (Benjamini–Hochberg) "
    "would be too weak"
)
POWER_METHOD = (
    f"{POWER:.0%} power at the Bonferroni level alpha/k (k tests in the table: the strictest step of Holm), "
    "taking the observed difference and spread as true, by the normal-approximation formula with t "
    "quantiles at the planned degrees of freedom; the fewer of the seeds that would show the difference "
    "and, when it is below the margin, those that would show equivalence"
)


@dataclass(frozen=True)
class Sample:
    """One config's ok jobs: per-seed values in accuracy points, their seeds, and its model size."""

    values: np.ndarray
    seeds: tuple[Hashable, ...] = ()
    n_params: Hashable = None  # equal counts stand for equal layer shapes

    @classmethod
    def of(cls, jobs: pd.DataFrame, column: str) -> Sample:
        """The jobs' ``column`` (a fraction) in points, with their ``seed`` and ``params`` columns."""
        rows = jobs.dropna(subset=[column])
        sizes = rows["params"].dropna().unique() if "params" in rows else []
        return cls(100 * rows[column].to_numpy(dtype=float), tuple(rows["seed"]) if "seed" in rows else (),
                   sizes[0] if len(sizes) == 1 else None)


def can_pair(a: Sample, b: Sample) -> bool:
    """Both ran the same seeds, each once, with the same model size."""
    return (a.n_params is not None and a.n_params == b.n_params and one_job_per_seed(a) and one_job_per_seed(b)
            and set(a.seeds) == set(b.seeds))


def one_job_per_seed(sample: Sample) -> bool:
    seeds = sample.seeds
    return len(seeds) == len(sample.values) == len(set(seeds)) and not any(pd.isna(seed) for seed in seeds)


def compare(a: Sample, b: Sample, margin: float = MARGIN) -> dict[str, Any]:
    """``a`` against ``b``: ``test``, ``n_a``, ``n_b``, ``difference`` (mean a − mean b, points), ``ci_low``
    and ``ci_high`` (95 %), ``p_value`` (two-sided, no difference), ``p_equivalence`` (TOST at ±
    ``margin``), ``variance`` (of one seed's share of the difference: with n seeds each, the
    difference's variance is variance/n), ``df`` (the t-test's degrees of freedom) and ``untested``
    (why no test ran, else empty)."""
    result: dict[str, Any] = {"test": "", "n_a": len(a.values), "n_b": len(b.values), "difference": np.nan,
                              "ci_low": np.nan, "ci_high": np.nan, "p_value": np.nan, "p_equivalence": np.nan,
                              "variance": np.nan, "df": np.nan, "untested": ""}
    if min(len(a.values), len(b.values)) == 0:
        return result | {"untested": "no ok jobs"}
    result["difference"] = a.values.mean() - b.values.mean()
    if min(len(a.values), len(b.values)) < 2:
        return result | {"untested": UNTESTED_FEW}
    paired = can_pair(a, b)
    x, y = (by_seed(a), by_seed(b)) if paired else (a.values, b.values)
    if flat(x - y) if paired else flat(x) and flat(y):
        return result | {"untested": UNTESTED_FLAT}
    variance = (x - y).var(ddof=1) if paired else x.var(ddof=1) + y.var(ddof=1)
    both_sides = t_test(x, y, paired)
    interval = both_sides.confidence_interval(CONFIDENCE)
    # TOST: shifting one side by the margin turns "difference > -margin" into "difference > 0"
    above_lower = t_test(x + margin, y, paired, alternative="greater").pvalue
    below_upper = t_test(x - margin, y, paired, alternative="less").pvalue
    return result | {"test": PAIRED if paired else WELCH, "ci_low": interval.low, "ci_high": interval.high,
                     "p_value": both_sides.pvalue, "p_equivalence": max(above_lower, below_upper),
                     "variance": variance, "df": float(both_sides.df)}


def flat(values: np.ndarray) -> bool:
    """No spread beyond float rounding (an accuracy moves in steps of 1/N, N the evaluated samples)."""
    return bool(np.allclose(values, values[0]))


def t_test(x: np.ndarray, y: np.ndarray, paired: bool, **options: Any) -> Any:
    """scipy's paired or Welch t-test of mean x − mean y (a result with ``pvalue`` and ``confidence_interval``)."""
    return stats.ttest_rel(x, y, **options) if paired else stats.ttest_ind(x, y, equal_var=False, **options)


def by_seed(sample: Sample) -> np.ndarray:
    """The values ordered by seed, so that two paired samples line up."""
    return pd.Series(sample.values, index=[str(seed) for seed in sample.seeds]).sort_index().to_numpy()


def judge(comparisons: pd.DataFrame, margin: float = MARGIN, alpha: float = ALPHA) -> pd.DataFrame:
    """``comparisons`` (rows of :func:`compare`, one family) with ``p_holm``, ``p_equivalence_holm``,
    ``verdict`` (``>``, ``<``, ``≈``, ``inconclusive``, or why untested) and ``seeds_needed``."""
    judged = comparisons.assign(p_holm=np.nan, p_equivalence_holm=np.nan, verdict=comparisons["untested"],
                                seeds_needed=np.nan)
    tested = judged["test"] != ""
    k = int(tested.sum())
    if k == 0:
        return judged
    judged.loc[tested, "p_holm"] = holm(judged.loc[tested, "p_value"])
    judged.loc[tested, "p_equivalence_holm"] = holm(judged.loc[tested, "p_equivalence"])
    for index, row in judged[tested].iterrows():
        if row["p_holm"] < alpha:
            judged.loc[index, "verdict"] = BETTER if row["difference"] > 0 else WORSE
        elif row["p_equivalence_holm"] < alpha:
            judged.loc[index, "verdict"] = EQUIVALENT
        else:
            judged.loc[index, "verdict"] = INCONCLUSIVE
            n_now = min(row["n_a"], row["n_b"])
            judged.loc[index, "seeds_needed"] = seeds_needed(row["difference"], row["variance"], margin, alpha / k,
                                                             n_now, df_per_seed=row["df"] / (n_now - 1))
    return judged


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm-adjusted p-values, in the order given."""
    return multipletests(np.asarray(p_values, dtype=float), method="holm")[1]


def seeds_needed(difference: float, variance: float, margin: float, alpha: float, n_now: int,
                 df_per_seed: float = 1.0, power: float = POWER) -> int:
    """Seeds per config that would likely decide a comparison whose true difference and spread are the
    observed ones: the fewer of those that would show the difference at two-sided ``alpha`` and, when
    ``|difference| < margin``, those that would show equivalence (TOST at ``alpha``; Chow, Shao & Wang,
    Sample Size Calculations in Clinical Research, 3.2). The normal-approximation formula with t
    quantiles at the degrees of freedom of n seeds, ``df_per_seed * (n - 1)`` (1 paired, up to 2 for
    Welch), solved by iteration; more than ``n_now``, since ``n_now`` did not decide it."""
    # (shift to detect, quantile of the test's alpha, quantile of the power) per way of deciding
    ways = []
    if difference != 0:
        ways.append((abs(difference), 1 - alpha / 2, power))
    room = margin - abs(difference)
    if room > 0:
        # at a true difference of 0 both one-sided tests must succeed; otherwise the nearer bound decides
        ways.append((room, 1 - alpha, 1 - (1 - power) / 2 if difference == 0 else power))
    return min(seeds_for(shift, alpha_quantile, power_quantile, variance, n_now + 1, df_per_seed)
               for shift, alpha_quantile, power_quantile in ways)


def seeds_for(shift: float, alpha_quantile: float, power_quantile: float, variance: float, n_min: int,
              df_per_seed: float) -> int:
    """The least n >= ``n_min`` with (t_a + t_b)^2 * variance / shift^2 <= n, the t quantiles at
    df_per_seed * (n - 1). The normal quantiles give a lower bound; t's exceed them by less than a
    factor of 3 in n once there are a few degrees of freedom, which bounds the search."""
    normal = (stats.norm.ppf(alpha_quantile) + stats.norm.ppf(power_quantile)) ** 2 * variance / shift**2
    n = np.arange(n_min, n_min + 20 + 3 * math.ceil(normal))
    df = df_per_seed * (n - 1)
    needed = (stats.t.ppf(alpha_quantile, df) + stats.t.ppf(power_quantile, df)) ** 2 * variance / shift**2
    enough = n[needed <= n]
    return int(enough[0]) if len(enough) else int(n[-1])
