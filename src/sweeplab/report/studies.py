"""docs/studies.md: the seed notes' studies, run with several seeds, beside what the notes reported.

Each study names its sweep dirs, the commands that make them, the numbers its seed note reported
(``../shared/seeds/``, one run each) and the note's claims, each as a comparison of two configs.
``sweeplab studies`` writes every study's full report into ``<out>/studies/<name>/`` and checks
each claim with Welch's t-test over the seeds' test accuracies (test accuracy is what the notes
reported).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sweeplab.jobfiles import METRICS
from sweeplab.report.build import write_report
from sweeplab.report.collect import collect
from sweeplab.report.document import Block, Bullets, Heading, Paragraph, Table, to_markdown
from sweeplab.report.stats import ALPHA, TEST, welch_p_value
from sweeplab.report.values import format_value


@dataclass(frozen=True)
class Config:
    """The jobs of one config: the swept values that pick it, in one sweep dir."""

    sweep: str
    values: dict[str, Any]

    def label(self, with_sweep: bool = False) -> str:
        values = ", ".join(f"{key}={format_value(value)}" for key, value in self.values.items())
        return f"{self.sweep}: {values}" if with_sweep else values


@dataclass(frozen=True)
class Claim:
    """What a note says, as ``a > b`` (a is better) or ``a ~ b`` (no real difference)."""

    text: str
    a: Config
    relation: str
    b: Config


@dataclass(frozen=True)
class Study:
    name: str
    title: str
    dirs: tuple[str, ...]  # sweep dirs under the sweeps root
    commands: tuple[str, ...]
    note: str  # what the seed note did
    note_numbers: tuple[tuple[Config, str], ...] = ()  # what it reported, per config
    claims: tuple[Claim, ...] = field(default_factory=tuple)


def _in(sweep: str, **values: Any) -> Config:
    return Config(sweep, {key.replace("__", "."): value for key, value in values.items()})


NOTE_002 = "Seed note 002 (KMNIST, 784-W-10, SGD lr 0.01, batch 32; one run each)"
STUDIES = (
    Study(
        "neurons", "Hidden width", ("neurons",), ("python train.py -m +sweep=neurons",),
        f"{NOTE_002}: 64 → 68.11 %, 128 → 68.36 %, 256 → 68.12 % with Sigmoid; it blamed Sigmoid's "
        "vanishing gradients for the small gain.",
        tuple((_in("neurons", model__width=w, activation="sigmoid"), f"{a} %")
              for w, a in ((64, 68.11), (128, 68.36), (256, 68.12))),
        (
            Claim("Sigmoid: 128 neurons are no better than 64 (68.36 vs 68.11 %)",
                  _in("neurons", model__width=128, activation="sigmoid"), "~",
                  _in("neurons", model__width=64, activation="sigmoid")),
            Claim("Sigmoid: 256 neurons are no better than 64 (68.12 vs 68.11 %)",
                  _in("neurons", model__width=256, activation="sigmoid"), "~",
                  _in("neurons", model__width=64, activation="sigmoid")),
            Claim("Sigmoid is what holds the wide layer back: ReLU beats it at 256 neurons",
                  _in("neurons", model__width=256, activation="relu"), ">",
                  _in("neurons", model__width=256, activation="sigmoid")),
        ),
    ),
    Study(
        "depth", "Hidden layers", ("depth",), ("python train.py -m +sweep=depth",),
        f"{NOTE_002}: a second Sigmoid layer of 64 gave \"no significant gain\" (no numbers); it "
        "recommended 2-3 layers with ReLU.",
        claims=(
            Claim("Sigmoid: a second layer gives no significant gain",
                  _in("depth", model__depth=2, activation="sigmoid"), "~",
                  _in("depth", model__depth=1, activation="sigmoid")),
            Claim("ReLU: two layers beat one",
                  _in("depth", model__depth=2, activation="relu"), ">",
                  _in("depth", model__depth=1, activation="relu")),
            Claim("ReLU: three layers beat one",
                  _in("depth", model__depth=3, activation="relu"), ">",
                  _in("depth", model__depth=1, activation="relu")),
        ),
    ),
    Study(
        "activation", "Activation function", ("activation",), ("python train.py -m +sweep=activation",),
        "Seed notes 002 and 003: ReLU and its variants should beat Sigmoid (003's 784-13-8-10 net with "
        "a Sigmoid layer reached only ~47 %); not measured.",
        claims=(
            Claim("ReLU beats Sigmoid", _in("activation", activation="relu"), ">",
                  _in("activation", activation="sigmoid")),
            Claim("LeakyReLU beats Sigmoid", _in("activation", activation="leaky_relu"), ">",
                  _in("activation", activation="sigmoid")),
            Claim("LeakyReLU is as good as ReLU", _in("activation", activation="leaky_relu"), "~",
                  _in("activation", activation="relu")),
        ),
    ),
    Study(
        "lr", "Learning rate, under SGD and under Adam", ("lr_sgd", "lr_adam"),
        ("python train.py -m +sweep=lr", "python train.py -m +sweep=lr optimizer=adam"),
        "Seed note 002 (setup not given; one run each): 0.1 → 86.49 %, 0.01 → 86.9 %, "
        "0.001 → 86.91 %; it recommends starting at 1e-3 with an adaptive optimizer such as Adam.",
        tuple((_in("lr_sgd", lr=lr), f"{a} %") for lr, a in ((0.1, 86.49), (0.01, 86.9), (0.001, 86.91))),
        (
            Claim("0.001 is as good as 0.01 (86.91 vs 86.9 %)", _in("lr_sgd", lr=0.001), "~",
                  _in("lr_sgd", lr=0.01)),
            Claim("0.01 beats 0.1 (86.9 vs 86.49 %)", _in("lr_sgd", lr=0.01), ">", _in("lr_sgd", lr=0.1)),
            Claim("at 1e-3, Adam beats SGD", _in("lr_adam", lr=0.001), ">", _in("lr_sgd", lr=0.001)),
        ),
    ),
    Study(
        "batch_size", "Batch size", ("batch_size",), ("python train.py -m +sweep=batch_size",),
        "Seed note 002 (setup not given; one run each): 32 → 86.49 %, 64 → 86.9 %, 128 → 86.91 % "
        "(the same three numbers as its learning-rate study).",
        tuple((_in("batch_size", batch_size=b), f"{a} %") for b, a in ((32, 86.49), (64, 86.9), (128, 86.91))),
        (
            Claim("64 is as good as 128 (86.9 vs 86.91 %)", _in("batch_size", batch_size=64), "~",
                  _in("batch_size", batch_size=128)),
            Claim("64 beats 32 (86.9 vs 86.49 %)", _in("batch_size", batch_size=64), ">",
                  _in("batch_size", batch_size=32)),
        ),
    ),
    Study(
        "optimizer", "Optimizer", ("optimizer",), ("python train.py -m +sweep=optimizer",),
        "Seed note 002 suggests comparing Adam with SGD; note 004 trains with Adam at 1e-3 and note 001 "
        "with plain SGD at 0.1. Not measured.",
        claims=(
            Claim("Adam at 1e-3 (note 004) beats plain SGD at 0.1 (note 001)",
                  _in("optimizer", optimizer="adam", lr=0.001), ">", _in("optimizer", optimizer="sgd", lr=0.1)),
            Claim("AdamW is as good as Adam at 1e-3", _in("optimizer", optimizer="adamw", lr=0.001), "~",
                  _in("optimizer", optimizer="adam", lr=0.001)),
            Claim("momentum helps SGD at 0.01", _in("optimizer", optimizer="sgd_momentum", lr=0.01), ">",
                  _in("optimizer", optimizer="sgd", lr=0.01)),
        ),
    ),
)


def accuracies_of(jobs: pd.DataFrame, config: Config) -> np.ndarray:
    """The per-seed test accuracies of ``config``'s ok jobs."""
    rows = jobs[(jobs["sweep"] == config.sweep) & (jobs["status"] == "ok")]
    for key, value in config.values.items():
        rows = rows[rows[key] == value]
    return rows[TEST].dropna().to_numpy()


def percent(values: np.ndarray) -> str:
    if len(values) == 0:
        return "no ok jobs"
    spread = f" ± {100 * values.std(ddof=1):.2f}" if len(values) > 1 else ""
    return f"{100 * values.mean():.2f}{spread} % (n={len(values)})"


def verdict(claim: Claim, a: np.ndarray, b: np.ndarray) -> str:
    """Does our data support the note's claim? Welch's t-test at ``ALPHA``."""
    if min(len(a), len(b)) < 2:
        return "untested: fewer than 2 ok jobs"
    p_value = welch_p_value(a, b)
    difference = 100 * (a.mean() - b.mean())
    measured = f"{difference:+.2f} points, p={p_value:.2g}"
    real = not np.isnan(p_value) and p_value < ALPHA
    if claim.relation == "~":
        return f"holds: within seed noise ({measured})" if not real else f"does not hold: a real difference ({measured})"
    if real:
        return f"holds ({measured})" if difference > 0 else f"does not hold: the reverse is true ({measured})"
    return f"not shown: within seed noise ({measured})"


def elapsed_minutes(sweep_dir: Path) -> float:
    """From the sweep's start (Hydra writes multirun.yaml first) to its last job's metrics.json."""
    ends = [path.stat().st_mtime for path in sweep_dir.glob(f"*/{METRICS}")]
    return (max(ends) - (sweep_dir / "multirun.yaml").stat().st_mtime) / 60


def study_blocks(study: Study, sweeps_root: Path, out: Path) -> list[Block]:
    """The study's section of studies.md; writes its full report into ``out/studies/<name>/``."""
    dirs = [sweeps_root / name for name in study.dirs]
    report_dir = out / "studies" / study.name
    write_report(dirs, report_dir)
    jobs = collect(dirs).jobs
    took = "; ".join(f"{name}: {len(jobs[jobs['sweep'] == name])} jobs in {elapsed_minutes(d):.1f} min"
                     for name, d in zip(study.dirs, dirs))
    link = report_dir.relative_to(out) / "report.md"
    blocks: list[Block] = [
        Heading(f"{study.name}: {study.title}"),
        Paragraph("Run: " + "; ".join(f"`{command}`" for command in study.commands) + f" ({took}). "
                  f"Report: `sweeplab report {' '.join(str(d) for d in dirs)} --out {report_dir}` → [{link}]({link})."),
        Paragraph(f"The note: {study.note}"),
    ]
    several = len(study.dirs) > 1  # then a config needs its sweep's name
    if study.note_numbers:
        rows = [{"config": config.label(several), "seed note (one run)": number,
                 "ours: test accuracy": percent(accuracies_of(jobs, config))}
                for config, number in study.note_numbers]
        blocks.append(Table(pd.DataFrame(rows)))
    rows = []
    for claim in study.claims:
        a, b = accuracies_of(jobs, claim.a), accuracies_of(jobs, claim.b)
        rows.append({"the note's claim": claim.text, "A": claim.a.label(several), "B": claim.b.label(several),
                     "A: ours": percent(a), "B: ours": percent(b), "verdict": verdict(claim, a, b)})
    outcomes = pd.Series([row["verdict"].split(":")[0].split(" (")[0] for row in rows]).value_counts()
    blocks.append(Paragraph(f"The note's {len(rows)} claims: "
                            + ", ".join(f"{outcome}: {count}" for outcome, count in outcomes.items()) + "."))
    blocks.append(Table(pd.DataFrame(rows)))
    return blocks


def write_studies(sweeps_root: Path, out: Path, studies: tuple[Study, ...] = STUDIES) -> Path:
    """Every study's report under ``out/studies/``, and ``out/studies.md`` beside them."""
    blocks: list[Block] = [
        Heading("The seed notes' studies, with seeds", level=1),
        Paragraph(f"Generated by `sweeplab studies --sweeps {sweeps_root} --out {out}` on "
                  f"{datetime.now():%Y-%m-%d} from the sweeps it names. The seed notes drew conclusions from "
                  "single runs whose differences were at most half a point; here every config ran with 5 "
                  "seeds on FashionMNIST (Debian's dataset-fashion-mnist; note 002 used KMNIST, which "
                  "cannot be downloaded on our machines), training on 54 000 images and selecting on 6 000."),
        Bullets([
            "Accuracies are test accuracy of the weights from each run's best validation epoch, "
            "mean ± sample std over seeds, n = runs with status ok.",
            f"A claim `A > B` holds when A's mean is higher and Welch's t-test gives p < {ALPHA}; "
            f"`A ~ B` holds when p ≥ {ALPHA}. 'Not shown' means the difference is within seed-to-seed "
            "noise. No correction for multiple comparisons.",
            "Every study's full report (all configs, validation accuracy, learning curves, the test of "
            "each config against the best) is linked under its heading.",
        ]),
    ]
    for study in studies:
        blocks += study_blocks(study, sweeps_root, out)
    path = out / "studies.md"
    path.write_text(to_markdown(blocks))
    return path
