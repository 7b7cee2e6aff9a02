"""Per-config statistics over seeds, and each config of a sweep compared with the sweep's best one.

A config is one combination of a sweep's swept parameters; its jobs differ by seed (or repeat it).
Only jobs with status ``ok`` enter the accuracy statistics; ``not_ok`` counts the others. How two
configs are compared and judged is :mod:`sweeplab.report.compare`.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from sweeplab.jobfiles import STATUSES
from sweeplab.report.collect import MISSING, UNREADABLE
from sweeplab.report.compare import MARGIN, Sample, family

VAL = "best_val_acc"  # validation accuracy of the best epoch: what model selection and sweeps use
TEST = "test_acc_at_best_val"  # test accuracy of that same epoch's weights
STATUS_ORDER = [*STATUSES, MISSING, UNREADABLE]
BEST, NO_OK_JOBS = "best", "no ok jobs"
CONFIDENCE = 0.95  # of a config's own mean's interval
# What summary.csv says of each config against its sweep's best (compare.family)
COMPARISON_COLUMNS = ["vs_best", "test", "difference", "ci_low", "ci_high", "p_value", "p_adjusted",
                      "p_equivalence", "p_equivalence_adjusted", "seeds_needed"]


def val_samples(jobs: pd.DataFrame, configs: pd.MultiIndex) -> pd.Series:
    """(sweep, config) of ``configs`` -> the :class:`~sweeplab.report.compare.Sample` of its ok jobs'
    validation accuracies (empty for a config without any)."""
    ok = jobs[jobs["status"] == "ok"]
    by_config = {key: Sample.of(rows, VAL) for key, rows in ok.groupby(["sweep", "config"], sort=False)}
    return pd.Series([by_config.get(key, Sample(np.array([]))) for key in configs], index=configs, dtype=object)


def summarize(jobs: pd.DataFrame, swept: dict[str, list[str]], margin: float = MARGIN) -> pd.DataFrame:
    """One row per config of each sweep (``jobs`` as :func:`~sweeplab.report.collect.collect` reads
    them), in the order its jobs ran (the order the values were given): mean, std, min, max and the
    half-width of the mean's 95 % interval over seeds, and the comparison with the best config of its
    own sweep (one family per sweep)."""
    jobs = jobs[jobs["status"] != UNREADABLE]  # their overrides are unknown: they belong to no config
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
    for metric in ("val", "test"):
        summary[f"{metric}_ci"] = mean_interval_half_width(summary[f"{metric}_std"], summary["n"])
    samples = val_samples(jobs, summary.index)
    comparisons = [compare_with_best(samples[samples.index.get_level_values("sweep") == name], margin)
                   for name in swept]
    return summary.join(pd.concat(comparisons)).reset_index()


def mean_interval_half_width(std: pd.Series, n: pd.Series) -> pd.Series:
    """Half the width of the 95 % t interval of a mean over n seeds (NaN for fewer than 2)."""
    n = n.where(n >= 2)
    return stats.t.ppf(0.5 + CONFIDENCE / 2, n - 1) * std / np.sqrt(n)


def compare_with_best(samples: pd.Series, margin: float = MARGIN) -> pd.DataFrame:
    """Each entry of ``samples`` (Samples) against the entry with the highest mean: the columns of
    :data:`COMPARISON_COLUMNS`, from simultaneous intervals over every pair of entries (the best is
    picked by the same data; see :mod:`sweeplab.report.compare`)."""
    means = samples.apply(lambda sample: sample.values.mean() if len(sample.values) else np.nan)
    result = pd.DataFrame({"vs_best": NO_OK_JOBS, "test": ""}, index=samples.index, columns=COMPARISON_COLUMNS)
    if means.isna().all():
        return result
    best = int(np.nanargmax(means.to_numpy()))
    others = [i for i in range(len(samples)) if i != best]
    if others:
        rows = family(list(samples), [(i, best) for i in others], margin, all_pairs=True)
        rows.index = samples.index[others]
        result.loc[rows.index] = rows.rename(columns={"verdict": "vs_best"})[COMPARISON_COLUMNS]
    result.iloc[best, result.columns.get_loc("vs_best")] = BEST
    return result.infer_objects()  # the numbers as floats again, after rows of text were set


def compare_sweep_bests(summary: pd.DataFrame, jobs: pd.DataFrame, margin: float = MARGIN) -> pd.DataFrame:
    """The best config of each sweep, tested against the best of them all (several sweeps side by side)."""
    best_rows = summary[summary["vs_best"] == BEST].set_index(["sweep", "config"])
    samples = val_samples(jobs, best_rows.index)
    columns = ["n", "val_mean", "val_std", "test_mean", "test_std"]
    return best_rows[columns].join(compare_with_best(samples, margin)).reset_index()


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
