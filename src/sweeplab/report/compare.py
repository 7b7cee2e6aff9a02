"""Configs compared over their seeds, a family of comparisons at a time, with verdicts read off
simultaneous intervals.

**Pairing.** Seed s gives every config the same data order (and, for configs of the same shape, the
same initial weights), so two configs' results on the same seed are correlated, whatever their
shapes. A comparison of a and b uses each config's mean over *all* its ok seeds, and the variance of
the difference of those means

    var_a / n_a + var_b / n_b − 2 · n_shared · cov_ab / (n_a · n_b),

with var over each config's own seeds and cov_ab over the seeds both ran (each once). This is the
covariance of the two means under a model with a random seed effect: when both ran the same seeds it
is exactly the paired t-test's variance (the per-seed differences' variance over n); when they share
no seed it is Welch's; a config with extra seeds keeps them (they shrink its own mean's variance)
while the shared ones remove the common noise. Degrees of freedom: Welch–Satterthwaite without
shared seeds, otherwise n − 1 of the smaller config (exact when all seeds are shared; otherwise a
conservative choice, since the variance then draws on more seeds than that).

**Families.** A table (a sweep's configs against its best; the claims of the studies page) is one
family, and every verdict in it is read off one interval per comparison at two-sided level
alpha / P, P the pairs the family covers: by Bonferroni's inequality all P intervals cover their true
differences together with probability ≥ 1 − alpha, so the chance of even one false verdict in the
table, '<', '>' and '≈' alike, is at most alpha (one interval gives both kinds of verdict, so they
share alpha instead of spending it twice). A table against "the best" covers every pair of its
tested configs (P = k(k − 1)/2), because the best is picked by the same data: any config might have
been picked, and with ties for the best (all configs equal) a "worse than the best" verdict on any
config is false. Why not the sharper max-t (Tukey, Dunnett, Hsu's MCB) critical values: they assume
one variance estimate shared by all comparisons, while pairing by seed gives each comparison its own
(with n − 1 degrees of freedom); at 5 seeds the largest of 45 such t's exceeds a max-t critical value
about three times as often as alpha allows. Bonferroni needs no assumption on the dependence and,
for all pairs, costs little over Tukey's (3.49 against 3.39 standard errors at 15 configs).

**Verdicts**, from the interval for a − b: ``>`` or ``<`` when it excludes 0; ``≈`` when instead it
lies within ± margin; ``inconclusive`` otherwise, with ``seeds_needed``, the seeds per config that
would likely decide it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Hashable, Sequence

import numpy as np
import pandas as pd
from scipy import special

from sweeplab.report import MARGIN

# scipy.stats.t's and norm's methods check their arguments at about 0.1 ms a call, and judging one pair
# takes a few dozen calls; the ufuncs they end in do the same sums at a microsecond:
# t.ppf(q, df) = stdtrit(df, q), t.cdf(x, df) = stdtr(df, x), t.sf(x, df) = stdtr(df, -x), norm.ppf = ndtri
ALPHA = 0.05
CONFIDENCE = 1 - ALPHA  # of each table's intervals, simultaneously
POWER = 0.8  # the chance of a decision that seeds_needed plans for
PAIRED, WELCH = "paired", "Welch"
BETTER, WORSE, EQUIVALENT, INCONCLUSIVE = ">", "<", "≈", "inconclusive"
UNTESTED_FEW, UNTESTED_FLAT = "untested: n<2", "untested: no seed-to-seed spread"
METHOD = (
    "the difference of the configs' means over all their ok seeds; its variance pairs them by seed on the "
    "seeds both ran, whatever the model shapes (seed s gives both the same data order): the paired t-test's "
    f"when both ran the same seeds ('{PAIRED}'), Welch's when they share none ('{WELCH}'), and in between "
    "(extra seeds count for their own config's mean) 'paired on m of the seeds'"
)
FAMILY_WHY = (
    "Bonferroni simultaneous intervals: each comparison's interval at two-sided level alpha / P, P the pairs "
    "the table covers (against the best: every pair of its configs, since the best is picked by the same data), "
    "so that the chance of even one false verdict in the table, '<', '>' or '≈' alike, is at most alpha under "
    "any dependence between comparisons; adjusted p-values are P times the raw ones (the TOST p: 2P times), "
    "capped at 1"
)
POWER_METHOD = (
    f"{POWER:.0%} power at the table's per-comparison level alpha / P, taking the observed difference and the "
    "paired spread as true and all configs rerun on the same seeds, by the normal-approximation formula with t "
    "quantiles at the planned degrees of freedom; the fewer of the seeds that would show the difference and, when "
    "it is below the margin, those that would show equivalence"
)
ROW_COLUMNS = ["test", "n_a", "n_b", "n_shared", "difference", "ci_low", "ci_high", "p_value", "p_adjusted",
               "p_equivalence", "p_equivalence_adjusted", "variance", "df", "df_per_seed", "level", "verdict",
               "within_margin", "seeds_needed"]


@dataclass(frozen=True)
class Sample:
    """One config's ok jobs: per-seed values in accuracy points, and their seeds."""

    values: np.ndarray
    seeds: tuple[Hashable, ...] = ()

    @classmethod
    def of(cls, jobs: pd.DataFrame, column: str) -> Sample:
        """The jobs' ``column`` (a fraction) in points, with their ``seed`` column."""
        rows = jobs.dropna(subset=[column])
        return cls(100 * rows[column].to_numpy(dtype=float), tuple(rows["seed"]) if "seed" in rows else ())

    def by_seed(self) -> dict[str, float]:
        """Seed -> value when each seed ran once (else empty: repeats of a seed cannot be paired)."""
        seeds = [str(seed) for seed in self.seeds if not pd.isna(seed)]
        if len(seeds) != len(self.values) or len(set(seeds)) != len(seeds):
            return {}
        return dict(zip(seeds, self.values, strict=True))


@dataclass(frozen=True)
class Pair:
    """What two samples' seeds give for the difference a − b (points)."""

    difference: float
    se: float  # of the difference of the means
    df: float
    n_shared: int
    variance: float  # of one seed's share of the difference, were both rerun on the same seeds
    df_per_seed: float  # the planning degrees of freedom per seed beyond the first

    @property
    def test(self) -> str:
        return WELCH if self.n_shared < 2 else PAIRED


def pair(a: Sample, b: Sample) -> Pair:
    """The difference of ``a`` and ``b``'s means, with its variance paired on their shared seeds (see
    the module docstring); both need at least 2 values."""
    n_a, n_b = len(a.values), len(b.values)
    var_a, var_b = a.values.var(ddof=1), b.values.var(ddof=1)
    n_shared, covariance = shared_covariance(a, b)
    if n_shared:
        df, df_per_seed = min(n_a, n_b) - 1.0, 1.0
    else:
        df = (var_a / n_a + var_b / n_b) ** 2 / ((var_a / n_a) ** 2 / (n_a - 1) + (var_b / n_b) ** 2 / (n_b - 1)) \
            if var_a + var_b > 0 else min(n_a, n_b) - 1.0
        df_per_seed = df / (min(n_a, n_b) - 1)
    se2 = var_a / n_a + var_b / n_b - 2 * n_shared * covariance / (n_a * n_b)
    return Pair(a.values.mean() - b.values.mean(), math.sqrt(max(se2, 0.0)), df, n_shared,
                var_a + var_b - 2 * covariance, df_per_seed)


def shared_covariance(a: Sample, b: Sample) -> tuple[int, float]:
    """The number of seeds both ran (each once) and the covariance of their values over those seeds;
    (0, 0.0) with fewer than 2 shared."""
    seeds_a, seeds_b = a.by_seed(), b.by_seed()
    shared = sorted(set(seeds_a) & set(seeds_b))
    if len(shared) < 2:
        return 0, 0.0
    return len(shared), float(np.cov([seeds_a[s] for s in shared], [seeds_b[s] for s in shared])[0, 1])


def test_name(a: Sample, b: Sample, p: Pair) -> str:
    if p.test == WELCH or p.n_shared == len(a.values) == len(b.values):
        return p.test
    return f"{PAIRED} on {p.n_shared} of the seeds"


def flat(se: float, a: Sample, b: Sample) -> bool:
    """No spread beyond float rounding (an accuracy moves in steps of 1/N, N the evaluated samples)."""
    scale = max(np.abs(a.values).max(), np.abs(b.values).max(), 1.0)
    return se <= 1e-9 * scale


def family(samples: Sequence[Sample], shown: Sequence[tuple[int, int]], margin: float = MARGIN,
           alpha: float = ALPHA, all_pairs: bool = False) -> pd.DataFrame:
    """One row of :data:`ROW_COLUMNS` per pair (a, b) of ``shown`` (indices into ``samples``): a − b in
    points with its simultaneous interval and verdict. The family the intervals cover together is
    ``shown``, or every pair of the tested samples with ``all_pairs`` (for a table against a best picked
    by the same data). ``untested`` rows (fewer than 2 values on a side, or no spread) carry why in
    ``verdict``."""
    testable = [len(sample.values) >= 2 for sample in samples]
    rows: list[dict[str, Any]] = []
    pairs: dict[int, Pair] = {}  # row -> the pair, for the rows that get a test
    for row, (i, j) in enumerate(shown):
        a, b = samples[i], samples[j]
        rows.append({"n_a": len(a.values), "n_b": len(b.values), "test": "", "within_margin": False})
        if min(len(a.values), len(b.values)) == 0:
            rows[row]["verdict"] = "no ok jobs"
            continue
        rows[row]["difference"] = a.values.mean() - b.values.mean()
        p = pair(a, b) if testable[i] and testable[j] else None
        if p is None or flat(p.se, a, b):
            rows[row]["verdict"] = UNTESTED_FEW if p is None else UNTESTED_FLAT
            continue
        pairs[row] = p
        rows[row] |= {"test": test_name(a, b, p), "n_shared": p.n_shared}
    tested = sum(testable)
    covered = tested * (tested - 1) // 2 if all_pairs else len(pairs)
    for row, p in pairs.items():
        i, j = shown[row]
        n_now = min(len(samples[i].values), len(samples[j].values))
        rows[row] |= dict(zip(ROW_COLUMNS[4:], judged(p, covered, margin, alpha, n_now), strict=True))
    return pd.DataFrame(rows, columns=ROW_COLUMNS, index=range(len(shown)))


def judged(p: Pair, pairs_covered: int, margin: float, alpha: float, n_now: int) -> list[Any]:
    """The columns from ``difference`` on for one comparison of a family covering ``pairs_covered``
    pairs: its interval at two-sided level alpha / pairs_covered (Bonferroni), the verdict read off it,
    and the p-values adjusted to match (a verdict's adjusted p is below alpha)."""
    d, se, level = p.difference, p.se, alpha / pairs_covered
    half_width = special.stdtrit(p.df, 1 - level / 2) * se
    low, high = d - half_width, d + half_width
    within = -margin < low and high < margin
    if low > 0 or high < 0:
        verdict, needed = BETTER if low > 0 else WORSE, np.nan
    elif within:
        verdict, needed = EQUIVALENT, np.nan
    else:
        verdict = INCONCLUSIVE
        needed = seeds_needed(d, p.variance, margin, level, n_now, p.df_per_seed)
    p_value = 2 * special.stdtr(p.df, -abs(d) / se)
    # TOST: the nearer bound; the interval at level L lies inside ± margin when this is below L / 2
    tost = max(special.stdtr(p.df, -(d + margin) / se), special.stdtr(p.df, (d - margin) / se))
    return [d, low, high, p_value, min(1.0, pairs_covered * p_value), tost, min(1.0, 2 * pairs_covered * tost),
            p.variance, p.df, p.df_per_seed, level, verdict, within, needed]


def seeds_needed(difference: float, variance: float, margin: float, alpha: float, n_now: int,
                 df_per_seed: float = 1.0, power: float = POWER) -> int:
    """Seeds per config that would likely decide a comparison whose true difference and spread are the
    observed ones: the fewer of those that would show the difference (an interval at two-sided level
    ``alpha`` excluding 0) and, when ``|difference| < margin``, those that would show equivalence (the
    same interval inside ± margin; Chow, Shao & Wang, Sample Size Calculations in Clinical Research,
    3.2). The normal-approximation formula with t quantiles at the degrees of freedom of n seeds,
    ``df_per_seed * (n - 1)`` (1 paired, up to 2 for Welch), solved by iteration; more than ``n_now``,
    since ``n_now`` did not decide it."""
    # (shift to detect, quantile of the interval's level, quantile of the power) per way of deciding
    ways = []
    if difference != 0:
        ways.append((abs(difference), 1 - alpha / 2, power))
    room = margin - abs(difference)
    if room > 0:
        # at a true difference of 0 both bounds must fall inside; otherwise the nearer bound decides
        ways.append((room, 1 - alpha / 2, 1 - (1 - power) / 2 if difference == 0 else power))
    return min(seeds_for(shift, alpha_quantile, power_quantile, variance, n_now + 1, df_per_seed)
               for shift, alpha_quantile, power_quantile in ways)


def seeds_for(shift: float, alpha_quantile: float, power_quantile: float, variance: float, n_min: int,
              df_per_seed: float) -> int:
    """The least n >= ``n_min`` with (t_a + t_b)^2 * variance / shift^2 <= n, the t quantiles at
    df_per_seed * (n - 1), by bisection (the left side falls and the right rises with n). The normal
    quantiles' n is a lower bound; t's exceed it by less than a factor of 3 once there are a few
    degrees of freedom, which bounds the search."""
    def enough(n: int) -> bool:
        df = df_per_seed * (n - 1)
        quantiles = special.stdtrit(df, alpha_quantile) + special.stdtrit(df, power_quantile)
        return quantiles**2 * variance / shift**2 <= n

    normal = (special.ndtri(alpha_quantile) + special.ndtri(power_quantile)) ** 2 * variance / shift**2
    low, high = n_min, n_min + 20 + 3 * math.ceil(normal)
    if enough(low):
        return low
    while high - low > 1:  # enough(high) holds; enough(low) does not
        middle = (low + high) // 2
        low, high = (low, middle) if enough(middle) else (middle, high)
    return high
