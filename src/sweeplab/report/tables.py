"""The report's tables as people read them: rounded numbers, ``mean ± std``, plain column names.
summary.csv and jobs.csv keep the full numbers; these frames are for report.md, report.html and the
terminal.
"""
from __future__ import annotations

import pandas as pd

from sweeplab.report.compare import BETTER, EQUIVALENT, INCONCLUSIVE, WORSE
from sweeplab.report.values import format_value

REASON_WIDTH = 60  # a failed job's reason can be a long exception message


def summary_table(summary: pd.DataFrame, params: list[str]) -> pd.DataFrame:
    """One sweep's configs: parameters, counts, accuracies over seeds, the comparison with the best."""
    if params:
        table = pd.DataFrame({param: summary[param].map(format_value, na_action="ignore") for param in params})
    else:
        table = pd.DataFrame({"config": summary["config"]})
    return table.assign(**{
        "n ok": summary["n"],
        "not ok": summary["not_ok"],
        "val acc (mean ± std)": mean_std(summary["val_mean"], summary["val_std"]),
        "val min–max": min_max(summary["val_min"], summary["val_max"]),
        "test acc (mean ± std; selected config only, not for choosing)": mean_std(summary["test_mean"],
                                                                                  summary["test_std"]),
        "test min–max": min_max(summary["test_min"], summary["test_max"]),
        "epochs": formatted(summary["epochs_mean"], ".1f"),
        "wall s": formatted(summary["wall_seconds_mean"], ".3g"),
        **comparison_columns(summary, "val − best, points (95 % CI)"),
    }).reset_index(drop=True)


def bests_table(bests: pd.DataFrame) -> pd.DataFrame:
    """The best config of each sweep against the best of them all."""
    return pd.DataFrame({
        "sweep": bests["sweep"],
        "best config": bests["config"],
        "n ok": bests["n"],
        "val acc (mean ± std)": mean_std(bests["val_mean"], bests["val_std"]),
        "test acc (mean ± std)": mean_std(bests["test_mean"], bests["test_std"]),
        **comparison_columns(bests, "val − best of all, points (95 % CI)"),
    })


def comparison_columns(rows: pd.DataFrame, effect_name: str) -> dict[str, pd.Series]:
    """The effect with its interval, the test used, raw and family-adjusted p, and the verdict."""
    return {
        effect_name: pd.Series([effect_text(*values) for values in zip(rows["difference"], rows["ci_low"],
                                                                      rows["ci_high"], strict=True)], index=rows.index),
        "test": rows["test"],
        "p": formatted(rows["p_value"], ".2g"),
        "p (adjusted)": formatted(rows["p_adjusted"], ".2g"),
        "vs best": pd.Series([verdict_text(verdict, seeds) for verdict, seeds
                              in zip(rows["vs_best"], rows["seeds_needed"], strict=True)], index=rows.index),
    }


def effect_text(difference: float, low: float, high: float) -> str:
    """``-1.23 [-2.01, -0.45]``; the difference alone without an interval; empty without either."""
    if pd.isna(difference):
        return ""
    return f"{difference:+.2f}" + (f" [{low:+.2f}, {high:+.2f}]" if pd.notna(low) else "")


def verdict_text(verdict: str, seeds_needed: float) -> str:
    """``< best``, ``≈ best``, ``inconclusive: ~12 seeds per config would likely decide``; any other
    verdict (``best``, why untested) as it is."""
    if verdict in (BETTER, WORSE, EQUIVALENT):
        return f"{verdict} best"
    if verdict == INCONCLUSIVE:
        return f"{INCONCLUSIVE}: {seeds_text(seeds_needed)}"
    return verdict


def seeds_text(seeds_needed: float) -> str:
    return f"~{int(seeds_needed)} seeds per config would likely decide"


def jobs_table(jobs: pd.DataFrame, params: list[str]) -> pd.DataFrame:
    """Every job, whatever its status, with its reason when it did not finish ok."""
    columns = ["sweep", "job", "status", *params, "seed", "best_val_acc", "test_acc_at_best_val",
               "epochs_completed", "wall_seconds", *(["trial_state"] if "trial_state" in jobs else []), "reason"]
    table = jobs[columns].astype(object)
    for column in [*params, "seed"]:
        table[column] = jobs[column].map(format_value, na_action="ignore")
    for column in ["best_val_acc", "test_acc_at_best_val"]:
        table[column] = formatted(jobs[column], ".3f")
    table["wall_seconds"] = formatted(jobs["wall_seconds"], ".3g")
    table["reason"] = jobs["reason"].map(lambda text: shorten(str(text)), na_action="ignore")
    return table.reset_index(drop=True)


def status_table(counts: pd.DataFrame) -> pd.DataFrame:
    return counts.reset_index().rename_axis(columns=None)


def mean_std(mean: pd.Series, std: pd.Series) -> pd.Series:
    return pd.Series([mean_std_text(m, s) for m, s in zip(mean, std, strict=True)], index=mean.index, dtype=object)


def mean_std_text(mean: float, std: float) -> str:
    """``0.820 ± 0.020``; the mean alone for a single seed; empty without any ok job."""
    if pd.isna(mean):
        return ""
    return f"{mean:.3f}" if pd.isna(std) else f"{mean:.3f} ± {std:.3f}"


def min_max(low: pd.Series, high: pd.Series) -> pd.Series:
    return pd.Series([f"{lo:.3f}–{hi:.3f}" if pd.notna(lo) else "" for lo, hi in zip(low, high, strict=True)],
                     index=low.index, dtype=object)


def formatted(values: pd.Series, spec: str) -> pd.Series:
    """Each number formatted with ``spec``; a missing one is an empty cell."""
    return pd.Series([format(value, spec) if pd.notna(value) else "" for value in values],
                     index=values.index, dtype=object)


def shorten(text: str) -> str:
    return text if len(text) <= REASON_WIDTH else text[: REASON_WIDTH - 1] + "…"


def trials_table(trials: pd.DataFrame) -> pd.DataFrame:
    """An Optuna study's trials (:func:`~sweeplab.report.optuna_files.study_trials`), values as read."""
    table = trials.drop(columns=["last_step"]).astype(object)
    table.columns = [str(column).removeprefix("params_") for column in table.columns]
    return table.map(lambda value: format_value(value) if pd.notna(value) else "")
