"""``sweeplab report``: read sweep dirs; write summary.csv, jobs.csv, report.md, a self-contained
report.html and PNG plots into one dir; return the text to print."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import optuna
import pandas as pd

from sweeplab.jobfiles import METRICS, OPTUNA_RESULTS
from sweeplab.report import sections
from sweeplab.report.collect import MISSING, UNREADABLE, Sweeps, collect
from sweeplab.report.compare import MARGIN
from sweeplab.report.document import Block, Image, to_html, to_markdown, to_text
from sweeplab.report.files import ReportError, write_file
from sweeplab.report.optuna_files import OptunaFiles, load_study, param_importances, study_trials, with_trials
from sweeplab.report.plots import (
    accuracy_vs_param,
    importance_chart,
    learning_curves,
    optimisation_history,
    pareto_front,
    save_png,
)
from sweeplab.report.stats import TEST, VAL, compare_sweep_bests, status_counts, summarize


@dataclass
class Report:
    files: list[Path]  # everything written, report.html among them
    text: str  # for the terminal: findings, job status and the summary tables
    unreadable: int  # job dirs with a damaged or missing file, listed in the report


def write_report(dirs: Sequence[Path], out: Path, margin: float = MARGIN, storage: str | None = None) -> Report:
    """The report of the sweeps in ``dirs``, written into ``out``; ``margin`` (accuracy points) is the
    equivalence margin; ``storage``: the Optuna storage URL of their studies, given by the user (else
    only a storage file inside a sweep dir is opened). Raises
    :class:`~sweeplab.report.collect.NotASweepDir` before writing anything if a dir is not a sweep."""
    sweeps = collect(dirs)
    studies = {name: load_study(files, sweeps.paths[name], storage) for name, files in sweeps.optuna.items()}
    trials = {name: study_trials(study, sweeps.optuna[name]) for name, (study, _) in studies.items()}
    # An Optuna study of any Hydra app: its jobs write no metrics.json; the study says how each ended.
    foreign = [name for name in sweeps.paths if not sweeps_metrics(sweeps.jobs, name)]
    for name in foreign:
        if name not in studies:
            raise ReportError(f"{sweeps.paths[name]}: none of its job dirs has a {METRICS} (what train.py jobs "
                              f"write) and it holds no Optuna study ({OPTUNA_RESULTS}): nothing to report")
    for name, frame in trials.items():
        sweeps.jobs = with_trials(sweeps.jobs, name, frame)
    accuracy = {name: params for name, params in sweeps.swept.items() if name not in foreign}
    accuracy_jobs = sweeps.jobs[sweeps.jobs["sweep"].isin(list(accuracy))]
    # (summarize needs a sweep with accuracies)
    summary = summarize(accuracy_jobs, accuracy, margin) if accuracy else pd.DataFrame(columns=["sweep", "config"])
    bests = compare_sweep_bests(summary, accuracy_jobs, margin) if len(accuracy) > 1 else None
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ReportError(f"{out}: cannot make the report's dir: {exc.strerror or exc}") from exc

    images = accuracy_images(summary, accuracy, out) + curve_images(sweeps, summary, out)
    optuna_blocks = [block for name, files in sweeps.optuna.items()
                     for block in optuna_section(name, files, studies[name], trials[name], out)]
    headline = [
        *sections.findings(summary, bests, margin, {name: trials[name] for name in foreign}),
        *sections.status(sweeps.jobs, status_counts(sweeps.jobs)),
        *sections.summaries(summary, accuracy),
        *(sections.sweep_bests(bests) if bests is not None else []),
    ]
    blocks = [*sections.overview(sweeps), *(sections.method(margin) if accuracy else []), *headline,
              *sections.plots(images), *optuna_blocks, *sections.jobs_section(sweeps.jobs, sweeps.swept)]

    tables = {out / "summary.csv": summary, out / "jobs.csv": sweeps.jobs}
    for path, frame in tables.items():
        write_file(path, lambda tmp, frame=frame: frame.to_csv(tmp, index=False))
    markdown, page = to_markdown(blocks), to_html(blocks, title="Sweep report: " + ", ".join(sweeps.paths))
    write_file(out / "report.md", lambda tmp: tmp.write_text(markdown))
    write_file(out / "report.html", lambda tmp: tmp.write_text(page))
    pngs = [block.path for block in blocks if isinstance(block, Image)]
    return Report(files=[*tables, out / "report.md", out / "report.html", *pngs], text=to_text(headline),
                  unreadable=int((sweeps.jobs["status"] == UNREADABLE).sum()))


def accuracy_images(summary: pd.DataFrame, swept: dict[str, list[str]], out: Path) -> list[Image]:
    images = []
    for param in dict.fromkeys(param for params in swept.values() for param in params):
        figure = accuracy_vs_param(summary, param, swept)
        if figure is not None:
            images.append(Image(save_png(figure, out / f"accuracy_vs_{slug(param)}.png"),
                                f"Accuracy against {param}: mean over the seeds of each config's ok jobs, error "
                                f"bars the 95 % confidence interval of that mean (t, n−1 df; none for n=1); "
                                f"validation = {VAL}, test = {TEST}."))
    return images


def curve_images(sweeps: Sweeps, summary: pd.DataFrame, out: Path) -> list[Image]:
    """Learning curves of each sweep, from the history.csv of its ok jobs."""
    images = []
    for name in sweeps.paths:
        figure = learning_curves(sweeps.histories, sweeps.jobs, summary, name)
        if figure is not None:
            images.append(Image(save_png(figure, out / f"curves_{slug(name)}.png"),
                                f"{name}: validation accuracy per epoch, mean over seeds; the band is the 95 % "
                                "confidence interval of that mean (t, n−1 df; none for n=1)."))
    return images


def optuna_section(name: str, files: OptunaFiles, loaded: tuple[optuna.Study, str], trials: pd.DataFrame,
                   out: Path) -> list[Block]:
    """The optimisation history, the parameter importances, the Pareto front of several objectives,
    and every trial of one Optuna sweep."""
    study, source = loaded
    images = []
    history = optimisation_history(files, name)
    if history is not None:
        images.append(Image(save_png(history, out / f"optuna_history_{slug(name)}.png"),
                            f"{name}: objective of each trial and the best so far; pruned, failed and running "
                            "trials marked (those without a value along the bottom)."))
    if len(study.directions) > 1:
        front = pareto_front(trials, files.objective_columns, files.objective_labels, name)
        if front is not None:
            images.append(Image(save_png(front, out / f"optuna_pareto_{slug(name)}.png"),
                                f"{name}: the objectives of each completed trial; the Pareto front (Optuna's "
                                "best_trials) marked and joined."))
    goal, importances = param_importances(study)
    chart = importance_chart(importances, goal, name)
    if chart is None:
        note = f"parameter importances: none, no completed trials to rank parameters by (study {source})"
    else:
        note = (f"parameter importances for {goal}: Optuna's get_param_importances (its default evaluator) "
                f"on the study {source}")
        images.append(Image(save_png(chart, out / f"optuna_importance_{slug(name)}.png"),
                            f"{name}: parameter importances (Optuna)."))
    return sections.optuna_study(name, files, images, note, trials)


def sweeps_metrics(jobs: pd.DataFrame, name: str) -> bool:
    """Whether any job of sweep ``name`` wrote a metrics.json (or a file the report could not read)."""
    return bool((jobs.loc[jobs["sweep"] == name, "status"] != MISSING).any())


def slug(name: str) -> str:
    """A file-name-safe form of a parameter or sweep name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)
