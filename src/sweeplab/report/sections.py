"""What the report says, section by section, as document blocks (no files read or written here)."""
from __future__ import annotations

import pandas as pd

from sweeplab.report.collect import Sweeps
from sweeplab.report.document import Block, Bullets, Heading, Image, Paragraph, Table
from sweeplab.report.optuna_files import OptunaFiles
from sweeplab.report.stats import ALPHA, TEST, SIGNIFICANCE_TEST, VAL
from sweeplab.report.tables import bests_table, jobs_table, mean_std_text, status_table, summary_table
from sweeplab.report.values import format_value

UNTESTED = ("n<2", "no seed-to-seed spread")


def overview(sweeps: Sweeps) -> list[Block]:
    items = []
    for name, path in sweeps.paths.items():
        n_jobs = int((sweeps.jobs["sweep"] == name).sum())
        swept = ", ".join(sweeps.swept[name]) or "nothing but the seed"
        kind = "Optuna study" if name in sweeps.optuna else "grid"
        items.append(f"{name} ({kind}): {path}: {n_jobs} jobs; swept: {swept}")
    return [Heading("Sweep report", level=1), Bullets(items)]


def method() -> list[Block]:
    return [Heading("How to read it"), Bullets([
        f"Validation accuracy is {VAL}: the accuracy of the epoch with the highest validation accuracy. "
        f"Test accuracy is {TEST}: the test accuracy of that same epoch's weights, not of the last epoch.",
        "A config is one combination of a sweep's swept parameters (the override keys with more than one "
        "value across its jobs, seed excepted); its jobs differ by seed. mean ± std (sample std, ddof=1), "
        "min–max and n ok are over its jobs with status ok. 'not ok' counts its other jobs (failed, "
        "diverged, pruned, interrupted, running, missing): left out of the statistics, listed under Jobs.",
        f"'vs best': {SIGNIFICANCE_TEST} of each config's per-seed validation accuracies against those of the best "
        f"config of its sweep (highest mean), at alpha = {ALPHA}. 'distinguishable' means the difference is "
        "larger than seed-to-seed noise, 'within noise' that it is not. No correction for multiple "
        "comparisons. With fewer than 2 ok jobs on either side the test is not run ('n<2: untested').",
    ])]


def findings(summary: pd.DataFrame, bests: pd.DataFrame | None) -> list[Block]:
    """Plain statements: which configs differ from the best by more than seed-to-seed noise."""
    names = list(dict.fromkeys(summary["sweep"]))
    items = [item for name in names
             for item in sweep_findings(summary[summary["sweep"] == name], f"{name}: " if len(names) > 1 else "")]
    if bests is not None:
        items += sweep_findings(bests.assign(config=bests["sweep"] + " " + bests["config"]), "across sweeps: ")
    return [Heading("Findings"), Bullets(items)]


def sweep_findings(rows: pd.DataFrame, prefix: str) -> list[str]:
    best = rows[rows["vs_best"] == "best"]
    if best.empty:
        return [f"{prefix}no job finished ok, so there is nothing to compare."]
    top = best.iloc[0]
    lines = [f"{prefix}best: {top['config']}: validation accuracy {mean_std_text(top['val_mean'], top['val_std'])}, "
             f"test accuracy {mean_std_text(top['test_mean'], top['test_std'])} (n={top['n']})."]
    distinct = rows[rows["vs_best"].str.startswith("distinguishable")]
    within = rows[rows["vs_best"].str.startswith("within noise")]
    if not distinct.empty or not within.empty:
        lines.append(f"{prefix}worse than the best by more than seed-to-seed noise (p < {ALPHA}): "
                     + (listing(distinct) or "none"))
        lines.append(f"{prefix}within seed-to-seed noise of the best (p >= {ALPHA}): " + (listing(within) or "none"))
    untested = int(rows["vs_best"].str.startswith(UNTESTED).sum())
    if untested:
        lines.append(f"{prefix}{untested} config(s) not tested against the best: fewer than 2 ok jobs on a side "
                     "(run them with several seeds to test them), or no spread at all.")
    without_ok = int((rows["vs_best"] == "no ok jobs").sum())
    if without_ok:
        lines.append(f"{prefix}{without_ok} config(s) without any ok job.")
    return lines


def listing(rows: pd.DataFrame) -> str:
    return "; ".join(f"{config} (p={p:.2g})" for config, p in zip(rows["config"], rows["p_value"]))


def status(jobs: pd.DataFrame, counts: pd.DataFrame) -> list[Block]:
    blocks: list[Block] = [Heading("Job status"), Table(status_table(counts), "status")]
    not_ok = jobs[jobs["status"] != "ok"]
    if not not_ok.empty:
        blocks.append(Paragraph(f"{len(not_ok)} of {len(jobs)} jobs are not ok; each is listed under Jobs "
                                "with its status and reason, and left out of the accuracy statistics."))
    return blocks


def summaries(summary: pd.DataFrame, swept: dict[str, list[str]]) -> list[Block]:
    blocks: list[Block] = []
    for name, params in swept.items():
        rows = summary[summary["sweep"] == name]
        blocks += [Heading(f"Summary: {name}"),
                   Paragraph(f"{len(rows)} config(s), {int(rows['jobs'].sum())} jobs."),
                   Table(summary_table(rows, params), "summary")]
    return blocks


def sweep_bests(bests: pd.DataFrame) -> list[Block]:
    return [Heading("Best config of each sweep"),
            Paragraph("Each sweep's best config against the best of them all, with the same test."),
            Table(bests_table(bests), "bests")]


def plots(images: list[Image]) -> list[Block]:
    return [Heading("Plots"), *images] if images else []


def optuna_study(name: str, files: OptunaFiles, images: list[Image], importance_note: str) -> list[Block]:
    results = files.results
    facts = []
    if results:
        facts.append(f"study {results.get('study_name')}: directions {', '.join(files.directions)}, "
                     f"n_trials {results.get('n_trials')}")
    if not files.trials.empty:
        counts = files.trials["state"].value_counts()
        facts.append("trials by state: " + ", ".join(f"{state} {count}" for state, count in counts.items()))
    if best := results.get("best"):
        facts.append(f"best trial: {trial_text(best)}")
    if pareto := results.get("pareto"):
        facts.append("Pareto front: " + "; ".join(trial_text(trial) for trial in pareto))
    facts.append(importance_note)
    return [Heading(f"Optuna study: {name}"), Bullets(facts), *images]


def trial_text(trial: dict) -> str:
    params = ", ".join(f"{key}={format_value(value)}" for key, value in (trial.get("params") or {}).items())
    values = ", ".join(format_value(value) for value in trial.get("values") or [])
    return f"#{trial.get('number')}: values {values}; {params}"


def jobs_section(jobs: pd.DataFrame, swept: dict[str, list[str]]) -> list[Block]:
    params = list(dict.fromkeys(param for params in swept.values() for param in params))
    return [Heading("Jobs"), Table(jobs_table(jobs, params), "jobs")]
