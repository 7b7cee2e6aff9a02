"""What the report says, section by section, as document blocks (no files read or written here)."""
from __future__ import annotations

import pandas as pd

from sweeplab.report.collect import UNREADABLE, Sweeps
from sweeplab.report.compare import (
    ALPHA,
    EQUIVALENT,
    FAMILY_WHY,
    INCONCLUSIVE,
    METHOD,
    POWER_METHOD,
    UNTESTED_FEW,
    UNTESTED_FLAT,
    WORSE,
)
from sweeplab.report.document import Block, Bullets, Heading, Image, Paragraph, Table
from sweeplab.report.optuna_files import PARAM_PREFIX, PARETO, OptunaFiles
from sweeplab.report.stats import BEST, NO_OK_JOBS, TEST, VAL
from sweeplab.report.tables import (
    bests_table,
    effect_text,
    jobs_table,
    mean_std_text,
    seeds_text,
    status_table,
    summary_table,
    trials_table,
)
from sweeplab.report.values import format_value


def overview(sweeps: Sweeps) -> list[Block]:
    items = []
    for name, path in sweeps.paths.items():
        n_jobs = int((sweeps.jobs["sweep"] == name).sum())
        swept = ", ".join(sweeps.swept[name]) or "nothing but the seed"
        kind = "Optuna study" if name in sweeps.optuna else "grid"
        items.append(f"{name} ({kind}): {path}: {n_jobs} jobs; swept: {swept}")
    return [Heading("Sweep report", level=1), Bullets(items)]


def method(margin: float) -> list[Block]:
    return [Heading("How to read it"), Bullets([
        f"Validation accuracy is {VAL}: the accuracy of the epoch with the highest validation accuracy. "
        f"Test accuracy is {TEST}: the test accuracy of that same epoch's weights, not of the last epoch. "
        "It is shown for every config and job, but it is for the selected config only; not for choosing: "
        "choose on validation accuracy, since a config chosen by its test accuracy has no unbiased test left.",
        "A config is one combination of a sweep's swept parameters (the override keys with more than one "
        "value across its jobs, seed excepted); its jobs differ by seed. mean ± std (sample std, ddof=1), "
        "min–max and n ok are over its jobs with status ok. 'not ok' counts its other jobs (failed, "
        "diverged, pruned, interrupted, running, missing, unreadable): left out of the statistics, listed under Jobs.",
        "Each config is compared with the best config of its sweep (highest mean validation accuracy): "
        "'val − best' is the difference of the means in accuracy points with its simultaneous interval. "
        f"The comparison: {METHOD}. The best is picked by the same data, so its lead over the others is "
        "slightly flattered; the intervals allow for that.",
        f"Verdicts, at alpha = {ALPHA}, from {FAMILY_WHY}: "
        f"'{WORSE} best' when the interval excludes 0; '{EQUIVALENT} best' when instead it lies within "
        f"± {margin:g} points (the equivalence margin, --margin); '{INCONCLUSIVE}' when neither: the data "
        "cannot tell, "
        "which is not the same as equal. An inconclusive verdict says how many seeds per config would likely "
        f"decide it ({POWER_METHOD}).",
        f"'{UNTESTED_FEW}': fewer than 2 ok jobs on a side; '{UNTESTED_FLAT}': every seed gave the same "
        "difference, so a t-test has nothing to go on.",
    ])]


def findings(summary: pd.DataFrame, bests: pd.DataFrame | None, margin: float,
             studies: dict[str, pd.DataFrame] | None = None) -> list[Block]:
    """Plain statements: which configs are worse than the best, which are as good, which are undecided;
    for ``studies`` (sweep -> its trials, an Optuna study of an app without metrics.json), the best
    trial or the Pareto front by the study's own objectives."""
    names = list(dict.fromkeys(summary["sweep"]))
    several = len(names) + len(studies or {}) > 1
    items = [item for name in names
             for item in sweep_findings(summary[summary["sweep"] == name], f"{name}: " if several else "", margin)]
    items += [study_finding(trials, f"{name}: " if several else "") for name, trials in (studies or {}).items()]
    if bests is not None:
        items += sweep_findings(bests.assign(config=bests["sweep"] + " " + bests["config"]), "across sweeps: ",
                                margin)
    return [Heading("Findings"), Bullets(items)]


def sweep_findings(rows: pd.DataFrame, prefix: str, margin: float) -> list[str]:
    best = rows[rows["vs_best"] == BEST]
    if best.empty:
        return [f"{prefix}no job finished ok, so there is nothing to compare."]
    top = best.iloc[0]
    lines = [f"{prefix}best: {top['config']}: validation accuracy {mean_std_text(top['val_mean'], top['val_std'])}, "
             f"test accuracy {mean_std_text(top['test_mean'], top['test_std'])} (n={top['n']})."]
    verdicts = {
        WORSE: f"worse than the best (adjusted p < {ALPHA})",
        EQUIVALENT: f"as good as the best within ± {margin:g} points (adjusted TOST p < {ALPHA})",
        INCONCLUSIVE: "inconclusive, neither shown worse nor shown as good",
    }
    if rows["vs_best"].isin(list(verdicts)).any():
        lines += [f"{prefix}{text}: " + (listing(rows[rows["vs_best"] == verdict]) or "none")
                  for verdict, text in verdicts.items()]
    untested = int(rows["vs_best"].isin([UNTESTED_FEW, UNTESTED_FLAT]).sum())
    if untested:
        lines.append(f"{prefix}{untested} config(s) not tested against the best: fewer than 2 ok jobs on a side "
                     "(run them with several seeds to test them), or no spread at all.")
    without_ok = int((rows["vs_best"] == NO_OK_JOBS).sum())
    if without_ok:
        lines.append(f"{prefix}{without_ok} config(s) without any ok job.")
    return lines


def study_finding(trials: pd.DataFrame, prefix: str) -> str:
    """The best trial (one objective) or the Pareto front's trials (several), by the study's values."""
    front = trials[trials[PARETO]]
    if front.empty:
        return f"{prefix}no trial completed, so there is no best trial."
    values = [c for c in trials if c == "value" or c.startswith("values_")]
    params = [c for c in trials if c.startswith(PARAM_PREFIX)]
    described = "; ".join(
        f"#{row['number']}: values " + ", ".join(format_value(row[c]) for c in values) + "; "
        + ", ".join(f"{c[len(PARAM_PREFIX):]}={format_value(row[c])}" for c in params if pd.notna(row[c]))
        for _, row in front.iterrows())
    if len(values) == 1:
        return f"{prefix}best trial {described} (of {int((trials['state'] == 'COMPLETE').sum())} completed)."
    return f"{prefix}Pareto front, {len(front)} trial(s) (Optuna's best_trials): {described}."


def listing(rows: pd.DataFrame) -> str:
    """``lr=0.01 (-0.50 [-1.20, +0.20] points, paired, p (adjusted)=0.31; ~14 seeds ...)``; ..."""
    items = []
    for _, row in rows.iterrows():
        seeds = f"; {seeds_text(row['seeds_needed'])}" if row["vs_best"] == INCONCLUSIVE else ""
        items.append(f"{row['config']} ({effect_text(row['difference'], row['ci_low'], row['ci_high'])} points, "
                     f"{row['test']}, p (adjusted)={row['p_adjusted']:.2g}{seeds})")
    return "; ".join(items)


def status(jobs: pd.DataFrame, counts: pd.DataFrame) -> list[Block]:
    blocks: list[Block] = [Heading("Job status"), Table(status_table(counts), "status")]
    not_ok = jobs[jobs["status"] != "ok"]
    if not not_ok.empty:
        blocks.append(Paragraph(f"{len(not_ok)} of {len(jobs)} jobs are not ok; each is listed under Jobs "
                                "with its status and reason, and left out of the accuracy statistics."))
    unreadable = jobs[jobs["status"] == UNREADABLE]
    if not unreadable.empty:
        blocks += [Paragraph(f"{len(unreadable)} job dir(s) could not be read (a damaged or missing file):"),
                   Bullets([f"{sweep}/{job}: {reason}" for sweep, job, reason
                            in zip(unreadable["sweep"], unreadable["job"], unreadable["reason"], strict=True)])]
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
            Paragraph("Each sweep's best config against the best of them all, with the same tests; "
                      "this table is its own family."),
            Table(bests_table(bests), "bests")]


def plots(images: list[Image]) -> list[Block]:
    return [Heading("Plots"), *images] if images else []


def optuna_study(name: str, files: OptunaFiles, images: list[Image], importance_note: str,
                 trials: pd.DataFrame) -> list[Block]:
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
    return [Heading(f"Optuna study: {name}"), Bullets(facts), *images,
            Paragraph(f"Trials of {name}, from the study (pareto: on the Pareto front, or the best trial of one "
                      "objective; intermediate values: how many the trial reported, and its last):"),
            Table(trials_table(trials), "trials")]


def trial_text(trial: dict) -> str:
    params = ", ".join(f"{key}={format_value(value)}" for key, value in (trial.get("params") or {}).items())
    values = ", ".join(format_value(value) for value in trial.get("values") or [])
    return f"#{trial.get('number')}: values {values}; {params}"


def jobs_section(jobs: pd.DataFrame, swept: dict[str, list[str]]) -> list[Block]:
    params = list(dict.fromkeys(param for params in swept.values() for param in params))
    return [Heading("Jobs"), Table(jobs_table(jobs, params), "jobs")]
