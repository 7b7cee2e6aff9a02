"""docs/studies.md: the seed notes' studies, run with several seeds, beside what the notes reported.

The studies and the notes' claims are data (docs/claims.yaml, read by :func:`load_studies`): each
study names its sweep dirs, the commands that make them, the numbers its seed note reported (one run
each) and the note's claims, each a comparison of two configs. ``sweeplab studies`` writes every
study's full report into ``<out>/studies/<name>/`` and judges every claim on the seeds' test
accuracies (what the notes reported) with :mod:`sweeplab.report.compare`, all claims of the page as
one family.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from sweeplab.jobfiles import METRICS
from sweeplab.report import MARGIN
from sweeplab.report.build import write_report
from sweeplab.report.collect import collect
from sweeplab.report.compare import (
    ALPHA,
    BETTER,
    EQUIVALENT,
    HOLM_WHY,
    INCONCLUSIVE,
    METHOD,
    POWER_METHOD,
    WORSE,
    Sample,
    compare,
    judge,
)
from sweeplab.report.document import Block, Bullets, Heading, Paragraph, Table, to_markdown
from sweeplab.report.stats import TEST
from sweeplab.report.tables import effect_text, formatted, seeds_text
from sweeplab.report.values import format_value

RELATIONS = (">", "~")  # a is better; no real difference


class BadClaimsFile(ValueError):
    """The claims file is not what :func:`load_studies` expects; the message names the entry and why."""


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
    claims: tuple[Claim, ...] = ()


def load_studies(path: Path) -> tuple[Study, ...]:
    """The studies of a claims file (see docs/claims.yaml); :class:`BadClaimsFile` names what is wrong."""
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise BadClaimsFile(f"{path}: cannot read the claims file: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise BadClaimsFile(f"{path}: not YAML: {' '.join(str(exc).split())}") from exc
    entries = data.get("studies") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise BadClaimsFile(f"{path}: expected a top-level 'studies:' list")
    return tuple(study_from(entry, f"{path}: studies[{i}]") for i, entry in enumerate(entries))


def study_from(entry: Any, where: str) -> Study:
    if not isinstance(entry, dict):
        raise BadClaimsFile(f"{where}: must be a mapping with name, title, dirs, commands, note, claims")
    dirs = strings(entry.get("dirs"), f"{where}.dirs")
    numbers = tuple((config_from(item.get("config"), dirs, f"{where}.note_numbers[{i}].config"),
                     string(item.get("reported"), f"{where}.note_numbers[{i}].reported"))
                    for i, item in enumerate(entry.get("note_numbers") or []))
    claims = tuple(claim_from(item, dirs, f"{where}.claims[{i}]") for i, item in enumerate(entry.get("claims") or []))
    return Study(string(entry.get("name"), f"{where}.name"), string(entry.get("title"), f"{where}.title"), dirs,
                 strings(entry.get("commands"), f"{where}.commands"), string(entry.get("note"), f"{where}.note"),
                 numbers, claims)


def string(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise BadClaimsFile(f"{where}={value!r}: must be a non-empty string")
    return value


def strings(values: Any, where: str) -> tuple[str, ...]:
    if not isinstance(values, list) or not values:
        raise BadClaimsFile(f"{where}={values!r}: must be a non-empty list of strings")
    return tuple(string(value, f"{where}[{i}]") for i, value in enumerate(values))


def claim_from(entry: Any, dirs: tuple[str, ...], where: str) -> Claim:
    if not isinstance(entry, dict) or not isinstance(entry.get("claim"), str):
        raise BadClaimsFile(f"{where}: must be a mapping with claim (its text), a, relation, b")
    if entry.get("relation") not in RELATIONS:
        raise BadClaimsFile(f"{where}.relation={entry.get('relation')!r}: must be one of {', '.join(RELATIONS)}")
    return Claim(entry["claim"], config_from(entry.get("a"), dirs, f"{where}.a"), entry["relation"],
                 config_from(entry.get("b"), dirs, f"{where}.b"))


def config_from(entry: Any, dirs: tuple[str, ...], where: str) -> Config:
    if not isinstance(entry, dict) or entry.get("sweep") not in dirs:
        raise BadClaimsFile(f"{where}={entry!r}: must be a mapping of sweep (one of the study's dirs: "
                            f"{', '.join(dirs)}) and the swept values that pick the config")
    values = {key: value for key, value in entry.items() if key != "sweep"}
    return Config(entry["sweep"], values)


def sample_of(jobs: pd.DataFrame, config: Config) -> Sample:
    """The per-seed test accuracies of ``config``'s ok jobs."""
    rows = jobs[(jobs["sweep"] == config.sweep) & (jobs["status"] == "ok")]
    for key, value in config.values.items():
        rows = rows[rows[key] == value] if key in rows else rows.iloc[:0]
    return Sample.of(rows, TEST)


def percent(sample: Sample) -> str:
    values = sample.values
    if len(values) == 0:
        return "no ok jobs"
    spread = f" ± {values.std(ddof=1):.2f}" if len(values) > 1 else ""
    return f"{values.mean():.2f}{spread} % (n={len(values)})"


def outcome(claim: Claim, judged: pd.Series, margin: float) -> str:
    """What our verdict on a and b says of the note's claim."""
    verdict = judged["verdict"]
    within_margin = judged["p_equivalence_holm"] < ALPHA
    if verdict == INCONCLUSIVE:
        return f"undecided: {seeds_text(judged['seeds_needed'])}"
    if verdict not in (BETTER, WORSE, EQUIVALENT):
        return verdict  # why it is untested
    if claim.relation == ">":
        return {BETTER: "holds", WORSE: "does not hold: the reverse",
                EQUIVALENT: f"does not hold: no difference beyond ± {margin:g} points"}[verdict]
    if verdict == EQUIVALENT:
        return "holds"
    return f"holds: a real difference, but within ± {margin:g} points" if within_margin else "does not hold"


def elapsed_minutes(sweep_dir: Path) -> float:
    """From the sweep's start (Hydra writes multirun.yaml first) to its last job's metrics.json."""
    ends = [path.stat().st_mtime for path in sweep_dir.glob(f"*/{METRICS}")]
    return (max(ends) - (sweep_dir / "multirun.yaml").stat().st_mtime) / 60


def study_blocks(study: Study, jobs: pd.DataFrame, claims: pd.DataFrame, sweeps_root: Path, out: Path) -> list[Block]:
    """The study's section of studies.md: how it ran, the note's numbers beside ours, its claims."""
    dirs = [sweeps_root / name for name in study.dirs]
    report_dir = out / "studies" / study.name
    took = "; ".join(f"{name}: {len(jobs[jobs['sweep'] == name])} jobs in {elapsed_minutes(d):.1f} min"
                     for name, d in zip(study.dirs, dirs, strict=True))
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
                 "ours: test accuracy": percent(sample_of(jobs, config))}
                for config, number in study.note_numbers]
        blocks.append(Table(pd.DataFrame(rows)))
    if not claims.empty:
        outcomes = claims["the claim"].str.split(":").str[0].value_counts()
        blocks.append(Paragraph(f"The note's {len(claims)} claims: "
                                + ", ".join(f"{outcome} {count}" for outcome, count in outcomes.items()) + "."))
        blocks.append(Table(claims.drop(columns=["study", "seeds_needed"]).reset_index(drop=True)))
    return blocks


def claim_rows(studies: tuple[Study, ...], jobs: dict[str, pd.DataFrame], margin: float) -> pd.DataFrame:
    """Every claim of every study, judged as one family, as studies.md shows them."""
    claims = [(study, claim) for study in studies for claim in study.claims]
    if not claims:
        return pd.DataFrame(columns=["study"])
    samples = [(sample_of(jobs[study.name], claim.a), sample_of(jobs[study.name], claim.b)) for study, claim in claims]
    judged = judge(pd.DataFrame([compare(a, b, margin) for a, b in samples]), margin)
    rows = []
    for (study, claim), (a, b), (_, verdict) in zip(claims, samples, judged.iterrows(), strict=True):
        several = len(study.dirs) > 1
        ours = verdict["verdict"]
        rows.append({
            "study": study.name, "the note's claim": claim.text,
            "A": claim.a.label(several), "B": claim.b.label(several), "A: ours": percent(a), "B: ours": percent(b),
            "A − B, points (95 % CI)": effect_text(verdict["difference"], verdict["ci_low"], verdict["ci_high"]),
            "test": verdict["test"], "p": verdict["p_value"], "p (Holm)": verdict["p_holm"],
            "TOST p (Holm)": verdict["p_equivalence_holm"],
            "ours": f"A {ours} B" if ours in (BETTER, WORSE, EQUIVALENT) else ours,
            "the claim": outcome(claim, verdict, margin), "seeds_needed": verdict["seeds_needed"],
        })
    table = pd.DataFrame(rows)
    for column in ("p", "p (Holm)", "TOST p (Holm)"):
        table[column] = formatted(table[column], ".2g")
    return table


def more_seeds(studies: tuple[Study, ...], claims: pd.DataFrame) -> list[Block]:
    """Per study with undecided claims, the seeds per config that would likely decide them all, and
    the commands that run them (the sweep files take ``seed=range(0,N)`` from the command line)."""
    items = []
    for study in studies:
        needed = claims.loc[claims["study"] == study.name, "seeds_needed"].dropna()
        if needed.empty:
            continue
        seeds = int(needed.max())
        commands = "; ".join(f"`{command} 'seed=range(0,{seeds})'`" for command in study.commands)
        items.append(f"{study.name}: {len(needed)} undecided claim(s), ~{seeds} seeds per config would likely "
                     f"decide them: {commands}")
    if not items:
        return []
    return [Paragraph("To decide the undecided claims, rerun these studies with more seeds, then `sweeplab studies`:"),
            Bullets(items)]


def write_studies(sweeps_root: Path, out: Path, claims_file: Path, margin: float = MARGIN) -> Path:
    """Every study of ``claims_file`` (see :func:`load_studies`): its report under ``out/studies/``, and
    ``out/studies.md`` beside them."""
    studies = load_studies(claims_file)
    jobs = {}
    for study in studies:
        dirs = [sweeps_root / name for name in study.dirs]
        write_report(dirs, out / "studies" / study.name, margin)
        jobs[study.name] = collect(dirs).jobs
    claims = claim_rows(studies, jobs, margin)
    blocks: list[Block] = [
        Heading("The seed notes' studies, with seeds", level=1),
        Paragraph(f"Generated by `sweeplab studies --sweeps {sweeps_root} --out {out} --claims {claims_file} "
                  f"--margin {margin:g}` on {datetime.now():%Y-%m-%d} from the sweeps and the claims it names. The "
                  "seed notes drew conclusions from single runs whose differences were at most half a point; here "
                  "every config ran with several seeds (n in the tables) on FashionMNIST (Debian's "
                  "dataset-fashion-mnist; note 002 used KMNIST, which cannot be downloaded on our machines), "
                  "training on 54 000 images and selecting on 6 000."),
        Bullets([
            "Accuracies are test accuracy of the weights from each run's best validation epoch, in %: "
            "mean ± sample std over seeds, n = runs with status ok.",
            "A − B is the difference of the means in accuracy points with its 95 % confidence interval (per "
            f"claim, not adjusted). The test: {METHOD}.",
            f"All {len(claims)} claims on this page are one family: their p-values are corrected with {HOLM_WHY}. "
            f"Our verdict, at alpha = {ALPHA}: 'A > B' (or 'A < B') when the Holm-adjusted p of the difference "
            f"is below alpha; 'A ≈ B' when instead two one-sided tests (TOST, Holm-adjusted) show the "
            f"difference lies within ± {margin:g} points (the equivalence margin); 'inconclusive' when neither.",
            "The claim 'A beats B' holds on 'A > B'; 'A is no better than / as good as B' holds on 'A ≈ B' (or "
            "on a real difference smaller than the margin). An inconclusive verdict leaves the claim undecided "
            "(not confirmed, not refuted) and says how many seeds per config would likely decide it "
            f"({POWER_METHOD}); rerun the study with `seed=range(0,N)` on the command line to get them.",
            "Every study's full report (all configs, validation accuracy, learning curves, each config against "
            "the best) is linked under its heading.",
        ]),
    ]
    if not claims.empty:
        overview = claims[["study", "the note's claim", "A − B, points (95 % CI)", "ours", "the claim"]]
        blocks += [Heading("All claims"), Table(overview), *more_seeds(studies, claims)]
    for study in studies:
        blocks += study_blocks(study, jobs[study.name], claims[claims["study"] == study.name], sweeps_root, out)
    path = out / "studies.md"
    path.write_text(to_markdown(blocks, markup=True))  # its own text: commands as code, links
    return path
