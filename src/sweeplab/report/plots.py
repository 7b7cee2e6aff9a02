"""The report's figures. They use matplotlib's object API (``Figure``, no pyplot): PNGs rendered by
the Agg backend, no window and no global figure state, so a report can run anywhere.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from sweeplab.report.files import write_file
from sweeplab.report.optuna_files import OptunaFiles
from sweeplab.report.stats import mean_interval_half_width
from sweeplab.report.values import all_numbers, config_label, format_value, wants_log_scale

DPI = 100
PANEL = (4.5, 4.0)  # inches per panel
MAX_LINES = 8  # more lines than this are unreadable: learning curves of the best configs only
# Per metric: summary column prefix and axis label.
ACCURACIES = {
    "val": "validation accuracy (best epoch)",
    "test": "test accuracy (at best val epoch)",
}
MAX_LABEL = 60  # longer config labels are replaced by the job's name in legends
STATE_MARKERS = {"PRUNED": "x", "FAIL": "v", "RUNNING": "s", "WAITING": "d"}


def literal(text: str) -> str:
    """``text`` drawn as written: matplotlib reads text between two ``$`` as math (mathtext), and a
    swept value such as ``runs/$x^{$`` would not parse. A ``\\$`` is drawn as ``$``."""
    return str(text).replace("$", r"\$")


def save_png(figure: Figure, path: Path) -> Path:
    return write_file(path, lambda tmp: figure.savefig(tmp, format="png", dpi=DPI, bbox_inches="tight"))


def accuracy_vs_param(summary: pd.DataFrame, param: str, swept: dict[str, list[str]]) -> Figure | None:
    """Mean over seeds with its 95 % interval against ``param``, validation and test side by side; one series per
    sweep that sweeps it, split by that sweep's other swept parameters when they are few (a grid).
    None when no config has an ok job."""
    sweeps = [name for name, params in swept.items() if param in params]
    rows = summary[summary["sweep"].isin(sweeps)].dropna(subset=["val_mean"])
    if rows.empty:
        return None
    categorical = not all_numbers(rows[param].dropna())
    categories = list(dict.fromkeys(rows[param].map(format_value)))

    series = accuracy_series(rows, param, swept, several_sweeps=len(sweeps) > 1)
    figure = Figure(figsize=(2 * PANEL[0], PANEL[1]), layout="constrained")
    axes = figure.subplots(1, 2, sharey=True)
    for label, points, joined in series:
        x = points[param].map(format_value).map(categories.index) if categorical else points[param]
        points = points.assign(position=x.to_numpy()).sort_values("position")
        for ax, metric in zip(axes, ACCURACIES, strict=True):
            ax.errorbar(points["position"], points[f"{metric}_mean"], yerr=points[f"{metric}_ci"],
                        fmt="o-" if joined else "o", capsize=3, label=label and literal(label))
    for ax, axis_label in zip(axes, ACCURACIES.values(), strict=True):
        ax.set_xlabel(literal(param))
        ax.set_title(axis_label)
        ax.grid(alpha=0.3)
        if categorical:
            ax.set_xticks(range(len(categories)), [literal(category) for category in categories])
            ax.set_xlim(-0.5, len(categories) - 0.5)
        elif wants_log_scale(param, rows[param]):
            ax.set_xscale("log")
    axes[0].set_ylabel("accuracy")
    if any(label for label, _, _ in series):
        axes[1].legend(fontsize="small")
    figure.suptitle(f"Accuracy against {literal(param)}: mean over seeds (ok jobs), error bars its 95 % CI")
    return figure


def accuracy_series(
    rows: pd.DataFrame, param: str, swept: dict[str, list[str]], several_sweeps: bool
) -> list[tuple[str | None, pd.DataFrame, bool]]:
    """(legend label, summary rows, draw a line through them) per series."""
    series = []
    for sweep, of_sweep in rows.groupby("sweep", sort=False):
        others = [p for p in swept[sweep] if p != param]
        prefix = f"{sweep}: " if several_sweeps else ""
        combos = config_label(of_sweep, others)
        # A grid: a few combos of the others, each with several values of param. Not a grid (an
        # Optuna study: every trial its own combo): one series of unjoined points.
        if not others or combos.nunique() > MAX_LINES or combos.value_counts().min() < 2:
            series.append((sweep if several_sweeps else None, of_sweep, not others))
            continue
        series += [(prefix + combo, group, True) for combo, group in of_sweep.groupby(combos, sort=False)]
    return series


def learning_curves(histories: pd.DataFrame, jobs: pd.DataFrame, summary: pd.DataFrame, sweep: str) -> Figure | None:
    """Validation accuracy per epoch of each config of one sweep, over its ok jobs: mean over seeds,
    shaded its 95 % interval. None when no ok job of the sweep has a history."""
    ok_jobs = jobs.loc[(jobs["sweep"] == sweep) & (jobs["status"] == "ok"), ["sweep", "job", "config"]]
    curves = histories.merge(ok_jobs, on=["sweep", "job"])
    if curves.empty:
        return None
    ranked = summary[summary["sweep"] == sweep].dropna(subset=["val_mean"]).sort_values("val_mean", ascending=False)
    shown = ranked["config"].head(MAX_LINES)
    per_epoch = curves.groupby(["config", "epoch"])["val_acc"].agg(["mean", "std", "count"])
    per_epoch["ci"] = mean_interval_half_width(per_epoch["std"], per_epoch["count"])
    first_job = ok_jobs.groupby("config")["job"].first()

    figure = Figure(figsize=(1.4 * PANEL[0], PANEL[1]), layout="constrained")
    ax = figure.subplots()
    for config in shown:
        if config not in per_epoch.index.get_level_values("config"):
            continue
        curve = per_epoch.loc[config]
        # an Optuna trial's config names every parameter: too long for a legend, so name its job (= trial)
        label = config if len(config) <= MAX_LABEL else f"job {first_job[config]}"
        line, = ax.plot(curve.index, curve["mean"], label=literal(label))
        ax.fill_between(curve.index, curve["mean"] - curve["ci"], curve["mean"] + curve["ci"],
                        color=line.get_color(), alpha=0.2)
    capped = f"; best {len(shown)} of {len(ranked)} configs" if len(ranked) > len(shown) else ""
    ax.set_title(f"{literal(sweep)}: validation accuracy per epoch\n(mean over seeds, ok jobs{capped})")
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("validation accuracy")
    ax.grid(alpha=0.3)
    band = Patch(color="grey", alpha=0.2, label="95 % CI of the mean")
    ax.legend(handles=[*ax.get_legend_handles_labels()[0], band], fontsize="small")
    return figure


def optimisation_history(files: OptunaFiles, sweep: str) -> Figure | None:
    """Each trial's objective and the best so far, one panel per objective; trials that did not
    complete are marked, at their value if they have one, else along the bottom edge."""
    trials = files.trials
    if trials.empty or not files.objective_columns:
        return None
    n_objectives = len(files.objective_columns)
    figure = Figure(figsize=(1.4 * PANEL[0], PANEL[1] * (0.5 + 0.5 * n_objectives)), layout="constrained")
    axes = figure.subplots(n_objectives, 1, squeeze=False, sharex=True)[:, 0]
    complete = trials[trials["state"] == "COMPLETE"].sort_values("number")
    objectives = zip(files.objective_columns, files.directions, files.objective_labels, strict=True)
    for ax, (column, direction, label) in zip(axes, objectives, strict=True):
        ax.plot(complete["number"], complete[column], "o", label="complete")
        best = complete[column].cummax() if direction == "maximize" else complete[column].cummin()
        ax.step(complete["number"], best, where="post", label="best so far")
        for state, of_state in trials[trials["state"] != "COMPLETE"].groupby("state"):
            marker = STATE_MARKERS.get(state, "*")
            has_value = of_state[column].notna()
            if has_value.any():
                ax.plot(of_state["number"][has_value], of_state[column][has_value], marker, label=state.lower())
            if not has_value.all():
                ax.plot(of_state["number"][~has_value], [0.02] * int((~has_value).sum()), marker, color="grey",
                        transform=ax.get_xaxis_transform(), label=f"{state.lower()} (no value; at the bottom)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    axes[-1].set_xlabel("trial")
    axes[0].set_title(f"{literal(sweep)}: optimisation history")
    return figure


def importance_chart(importances: dict[str, float], goal: str, sweep: str) -> Figure | None:
    """Horizontal bars, the most important parameter on top; None when Optuna ranked nothing."""
    if not importances:
        return None
    ranked = sorted(importances.items(), key=lambda item: item[1])  # barh draws bottom-up
    figure = Figure(figsize=(PANEL[0] * 1.4, 1.2 + 0.4 * len(ranked)), layout="constrained")
    ax = figure.subplots()
    ax.barh([literal(name) for name, _ in ranked], [value for _, value in ranked])
    ax.set_xlabel("importance (sums to 1)")
    ax.set_title(f"{literal(sweep)}: parameter importances for {goal}")
    return figure


def pareto_front(trials: pd.DataFrame, objectives: list[str], labels: list[str], sweep: str) -> Figure | None:
    """Each completed trial by its first two objectives, the Pareto front (``trials["pareto"]``,
    Optuna's ``best_trials``) marked and joined; None without a completed trial."""
    complete = trials[trials["state"] == "COMPLETE"].dropna(subset=objectives[:2])
    if complete.empty:
        return None
    front = complete[complete["pareto"].astype(bool)].sort_values(objectives[0])
    figure = Figure(figsize=(1.4 * PANEL[0], PANEL[1]), layout="constrained")
    ax = figure.subplots()
    ax.plot(complete[objectives[0]], complete[objectives[1]], "o", color="grey", alpha=0.5, label="trial")
    ax.plot(front[objectives[0]], front[objectives[1]], "o-", color="C3", label="Pareto front")
    for _, row in front.iterrows():
        ax.annotate(f"#{row['number']}", (row[objectives[0]], row[objectives[1]]), fontsize="x-small",
                    xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel(labels[0])
    ax.set_ylabel(labels[1])
    shown = f" (objectives 0 and 1 of {len(objectives)})" if len(objectives) > 2 else ""
    ax.set_title(f"{literal(sweep)}: Pareto front{shown}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return figure
