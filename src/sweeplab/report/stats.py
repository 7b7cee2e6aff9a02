"""Per-config statistics over seeds, and which configs are distinguishable from the best one.

A config is one combination of a sweep's swept parameters; its jobs differ by seed (or repeat it).
Only jobs with status ``ok`` enter the accuracy statistics; ``not_ok`` counts the others.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from sweeplab.jobfiles import STATUSES
from sweeplab.report.collect import MISSING


VAL = "best_val_acc"  # validation accuracy of the best epoch: what model selection and sweeps use
TEST = "test_acc_at_best_val"  # test accuracy of that same epoch's weights
ALPHA = 0.05
SIGNIFICANCE_TEST = "Welch's t-test (two-sided, unequal variances; scipy.stats.ttest_ind with equal_var=False)"
STATUS_ORDER = [*STATUSES, MISSING]


def val_samples(jobs: pd.DataFrame) -> pd.Series:
    """(sweep, config) -> the per-seed validation accuracies of its ok jobs (an array)."""
    ok = jobs[jobs["status"] == "ok"]
    return ok.groupby(["sweep", "config"], sort=False)[VAL].apply(lambda values: values.dropna().to_numpy())


def summarize(jobs: pd.DataFrame, swept: dict[str, list[str]]) -> pd.DataFrame:
    """One row per config of each sweep (``jobs`` as :func:`~sweeplab.report.collect.collect` reads
    them), in the order its jobs ran (the order the values were given), with ``vs_best`` comparing it
    to the best config of its own sweep."""
    ok = jobs[jobs["status"] == "ok"]
    params = list(dict.fromkeys(param for params in swept.values() for param in params))
    keys = ["sweep", "config"]
    by_config = jobs.groupby(keys, sort=False)
    summary = by_config[params].first().join(by_config.size().rename("jobs"))
    summary["not_ok"] = summary["jobs"] - ok.groupby(keys).size().reindex(summary.index, fill_value=0)
    summary = summary.join(ok.groupby(keys).agg(
        n=(VAL, "count"),
        val_mean=(VAL, "mean"), val_std=(VAL, "std"), val_min=(VAL, "min"), val_max=(VAL, "max"),
        test_mean=(TEST, "mean"), test_std=(TEST, "std"), test_min=(TEST, "min"), test_max=(TEST, "max"),
        epochs_mean=("epochs_completed", "mean"), wall_seconds_mean=("wall_seconds", "mean"),
    ))
    summary["n"] = summary["n"].fillna(0).astype(int)
    samples = val_samples(jobs).reindex(summary.index)
    comparisons = [compare_with_best(samples[samples.index.get_level_values("sweep") == name]) for name in swept]
    return summary.join(pd.concat(comparisons)).reset_index()


def compare_with_best(samples: pd.Series) -> pd.DataFrame:
    """``p_value`` and ``vs_best`` for each entry of ``samples`` (arrays of per-seed values, NaN for
    none): Welch's t-test against the entry with the highest mean."""
    samples = samples.apply(lambda values: values if isinstance(values, np.ndarray) else np.array([]))
    means = samples.apply(lambda values: values.mean() if len(values) else np.nan)
    result = pd.DataFrame({"p_value": np.nan, "vs_best": "no ok jobs"}, index=samples.index)
    if means.isna().all():
        return result
    best = means.idxmax()
    for key, values in samples.items():
        if key == best:
            result.loc[key, "vs_best"] = "best"
        elif len(values) == 0:
            continue  # stays "no ok jobs"
        elif min(len(values), len(samples[best])) < 2:
            result.loc[key, "vs_best"] = "n<2: untested"
        else:
            p_value = welch_p_value(values, samples[best])
            result.loc[key, ["p_value", "vs_best"]] = [p_value, verdict(p_value)]
    return result


def welch_p_value(values: np.ndarray, best: np.ndarray) -> float:
    """NaN when both samples have no spread at all (the t statistic is undefined)."""
    if np.ptp(values) == 0 and np.ptp(best) == 0:
        return np.nan
    return float(stats.ttest_ind(values, best, equal_var=False).pvalue)


def verdict(p_value: float) -> str:
    if np.isnan(p_value):
        return "no seed-to-seed spread: untested"
    if p_value < ALPHA:
        return f"distinguishable (p={p_value:.2g})"
    return f"within noise (p={p_value:.2g})"


def compare_sweep_bests(summary: pd.DataFrame, jobs: pd.DataFrame) -> pd.DataFrame:
    """The best config of each sweep, tested against the best of them all (several sweeps side by side)."""
    best_rows = summary[summary["vs_best"] == "best"].set_index(["sweep", "config"])
    samples = val_samples(jobs).reindex(best_rows.index)
    columns = ["n", "val_mean", "val_std", "test_mean", "test_std"]
    return best_rows[columns].join(compare_with_best(samples)).reset_index()


def status_counts(jobs: pd.DataFrame) -> pd.DataFrame:
    """Jobs per sweep (rows, in the order given) and status (columns: ok first, then each way of not
    finishing), with totals; every job is counted, whatever its status."""
    counts = pd.crosstab(jobs["sweep"], jobs["status"])
    statuses = [s for s in STATUS_ORDER if s in counts] + sorted(set(counts) - set(STATUS_ORDER))
    counts = counts.reindex(index=list(dict.fromkeys(jobs["sweep"])), columns=statuses)
    counts["total"] = counts.sum(axis=1)
    if len(counts) > 1:
        counts.loc["total"] = counts.sum()
    return counts
