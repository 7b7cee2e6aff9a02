"""docs/studies.md: the seed notes' studies, run with several seeds, beside what the notes reported.

The studies and the notes' claims are data (docs/claims.yaml, read by :func:`load_studies`): each
study names its sweep dirs, the commands that make them, the numbers its seed note reported (one run
each) and the note's claims, each a comparison of two configs. ``sweeplab studies`` writes every
study's full report into ``<out>/studies/<name>/`` and judges every claim on the seeds' test
accuracies (what the notes reported) with :mod:`sweeplab.report.compare`, all claims of the page as
one family. With ``from_jobs`` it re-decides the claims from the study reports' committed jobs.csv
instead of the sweep dirs (which hold the learning curves and are not committed), leaving the study
reports as they are.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from scipy import stats

from sweeplab.jobfiles import METRICS, read_invocations
from sweeplab.report import MARGIN
from sweeplab.report.build import write_report
from sweeplab.report.collect import collect
from sweeplab.report.compare import (
    ALPHA,
    BETTER,
    EQUIVALENT,
    FAMILY_WHY,
    METHOD,
    POWER,
    POWER_METHOD,
    WORSE,
    Sample,
    family,
    seeds_for,
    seeds_needed,
)
from sweeplab.report.document import Block, Bullets, Heading, Paragraph, Table, to_markdown
from sweeplab.report.stats import TEST, VAL
from sweeplab.report.tables import effect_text, formatted, seeds_text
from sweeplab.report.values import format_value

# a beats b; a equals b within the margin; a is as good as b (not worse by the margin or more); a is no
# better than b (not better by the margin or more)
RELATIONS = (">", "~", ">=", "<=")


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
    """What a note says: ``a > b`` (a is better), ``a ~ b`` (no difference beyond the margin either way),
    ``a >= b`` (a is as good as b: not worse by the margin or more) or ``a <= b`` (a is no better than
    b, "no gain": not better by the margin or more). One-sided claims are one-sided: a claim of no gain
    is not refuted by a loss."""

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


@dataclass(frozen=True)
class Reference:
    """A public figure to set beside ours: what it is (with its source) and its test accuracy."""

    what: str
    test_accuracy: float


def load_references(path: Path) -> tuple[Reference, ...]:
    """The claims file's ``references:`` (none if it has none)."""
    entries = yaml.safe_load(path.read_text()).get("references") or []
    references = []
    for i, entry in enumerate(entries):
        where = f"{path}: references[{i}]"
        accuracy = entry.get("test_accuracy") if isinstance(entry, dict) else None
        if not isinstance(accuracy, float) or not 0 < accuracy <= 1:
            raise BadClaimsFile(f"{where}.test_accuracy={accuracy!r}: must be a fraction in (0, 1]")
        references.append(Reference(string(entry.get("what"), f"{where}.what"), accuracy))
    return tuple(references)


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
    """What the simultaneous interval for a − b says of the note's claim: it holds when the interval
    lies where the claim puts the difference, does not hold when it lies where the claim rules the
    difference out, and is undecided otherwise."""
    low, high = judged["ci_low"], judged["ci_high"]
    if pd.isna(low):
        return judged["verdict"]  # why it is untested
    if claim.relation == ">":
        if low > 0:
            return "holds"
        if high < 0:
            return "does not hold: the reverse"
        if -margin < low and high < margin:
            return f"does not hold: no difference beyond ± {margin:g} points"
    elif claim.relation == "~":
        if -margin < low and high < margin:
            return f"holds: a real difference, but within ± {margin:g} points" if low > 0 or high < 0 else "holds"
        if low > margin or high < -margin:
            return f"does not hold: a difference beyond ± {margin:g} points"
    elif claim.relation == ">=":
        if low > -margin:
            return "holds"
        if high < -margin:
            return f"does not hold: worse by more than {margin:g} points"
    else:  # "<="
        if high < margin:
            return "holds"
        if low > margin:
            return f"does not hold: better by more than {margin:g} points"
    return f"undecided: {seeds_text(claim_seeds(claim, judged, margin))}"


def claim_seeds(claim: Claim, judged: pd.Series, margin: float) -> int:
    """Seeds per config that would likely decide the claim either way, taking the observed difference
    and paired spread as true: for a one-sided claim, those that would put the interval on one side of
    its bound (-margin for >=, +margin for <=); otherwise those that would decide the verdict."""
    difference, n_now = judged["difference"], int(min(judged["n_a"], judged["n_b"]))
    plan = judged["variance"], n_now + 1, judged["df_per_seed"]
    if claim.relation in (">=", "<="):
        bound = -margin if claim.relation == ">=" else margin
        return seeds_for(abs(difference - bound), 1 - judged["level"] / 2, POWER, *plan)
    if claim.relation == "~" and abs(difference) > margin:
        return seeds_for(abs(difference) - margin, 1 - judged["level"] / 2, POWER, *plan)
    return seeds_needed(difference, judged["variance"], margin, judged["level"], n_now, judged["df_per_seed"])


def run_time(sweep_dir: Path) -> str:
    """The sweep's time: every finished invocation's, summed from sweep.yaml; in a dir without one (a
    sweep of an older version), from the last invocation's start (Hydra writes multirun.yaml first, and
    again on each resume) to the sweep's last metrics.json."""
    finished = [run for run in read_invocations(sweep_dir) if run.ended is not None]
    if finished:
        minutes = sum(run.ended - run.started for run in finished) / 60
        return f"{len(finished)} invocation(s) in {minutes:.1f} min"
    ends = [path.stat().st_mtime for path in sweep_dir.glob(f"*/{METRICS}")]
    return f"the last invocation in {(max(ends) - (sweep_dir / 'multirun.yaml').stat().st_mtime) / 60:.1f} min"


def study_blocks(study: Study, jobs: pd.DataFrame, claims: pd.DataFrame, sweeps_root: Path, out: Path,
                 from_jobs: bool) -> list[Block]:
    """The study's section of studies.md: how it ran, the note's numbers beside ours, its claims."""
    dirs = [sweeps_root / name for name in study.dirs]
    report_dir = out / "studies" / study.name
    took = "; ".join(f"{name}: {len(jobs[jobs['sweep'] == name])} jobs"
                     + ("" if from_jobs else f", {run_time(d)}")
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
    pooled = [sample for both in samples for sample in both]
    judged = family(pooled, [(2 * i, 2 * i + 1) for i in range(len(claims))], margin)
    rows = []
    for (study, claim), (a, b), (_, verdict) in zip(claims, samples, judged.iterrows(), strict=True):
        several = len(study.dirs) > 1
        ours = verdict["verdict"]
        claimed = outcome(claim, verdict, margin)
        rows.append({
            "study": study.name, "the note's claim": claim.text, "claim": f"A {claim.relation} B",
            "A": claim.a.label(several), "B": claim.b.label(several), "A: ours": percent(a), "B: ours": percent(b),
            "A − B, points (simultaneous 95 % CI)": effect_text(verdict["difference"], verdict["ci_low"],
                                                               verdict["ci_high"]),
            "test": verdict["test"], "p": verdict["p_value"], "p (adjusted)": verdict["p_adjusted"],
            "TOST p (adjusted)": verdict["p_equivalence_adjusted"],
            "ours": f"A {ours} B" if ours in (BETTER, WORSE, EQUIVALENT) else ours,
            "the claim": claimed,
            "seeds_needed": claim_seeds(claim, verdict, margin) if claimed.startswith("undecided") else np.nan,
        })
    table = pd.DataFrame(rows)
    for column in ("p", "p (adjusted)", "TOST p (adjusted)"):
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
        more = f"'seed=range(0,{seeds})' hydra.sweeper.extend=true"  # added to the study's own sweep dirs
        commands = "; ".join(f"`{command} {more}`" for command in study.commands)
        items.append(f"{study.name}: {len(needed)} undecided claim(s), ~{seeds} seeds per config would likely "
                     f"decide them: {commands}")
    if not items:
        return []
    return [Paragraph("To decide the undecided claims, rerun these studies with more seeds, then `sweeplab studies`:"),
            Bullets(items)]


def study_jobs(study: Study, sweeps_root: Path, out: Path, margin: float, from_jobs: bool) -> pd.DataFrame:
    """The study's jobs: from its sweep dirs, writing its report; or, ``from_jobs``, from that report's jobs.csv."""
    if from_jobs:
        return pd.read_csv(out / "studies" / study.name / "jobs.csv")
    dirs = [sweeps_root / name for name in study.dirs]
    write_report(dirs, out / "studies" / study.name, margin)
    return collect(dirs).jobs


def best_configs(studies: tuple[Study, ...], jobs: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Per study, the config with the highest mean validation accuracy over its ok seeds, and its test
    accuracy (of the selected config only, as a published figure is)."""
    rows = []
    for study in studies:
        ok = jobs[study.name][jobs[study.name]["status"] == "ok"]
        sweep, config = ok.groupby(["sweep", "config"])[VAL].mean().idxmax()
        best = ok.loc[(ok["sweep"] == sweep) & (ok["config"] == config), TEST].agg(["mean", "std", "count"])
        half = stats.t.ppf(0.975, best["count"] - 1) * best["std"] / np.sqrt(best["count"])
        rows.append({"study": study.name, "its best config": f"{sweep}: {config}",
                     "test accuracy, % (mean ± 95 % CI)": f"{100 * best['mean']:.2f} ± {100 * half:.2f} "
                                                           f"(n={int(best['count'])})"})
    return pd.DataFrame(rows)


def same_numbers(studies: tuple[Study, ...]) -> list[str]:
    """Sentences naming studies whose notes report the very same numbers: at most one can be a measurement."""
    reported = {}
    for study in studies:
        numbers = tuple(number for _, number in study.note_numbers)
        if numbers:
            reported.setdefault(numbers, []).append(study.name)
    return [f"The seed note's {' and '.join(names)} tables report the same numbers digit for digit "
            f"({', '.join(numbers)}): at most one of them can be a measurement."
            for numbers, names in reported.items() if len(names) > 1]


def reference_blocks(studies: tuple[Study, ...], jobs: dict[str, pd.DataFrame], claims_file: Path) -> list[Block]:
    """Our studies' best configs beside public figures, and the note's tables that repeat each other."""
    references = load_references(claims_file)
    blocks: list[Block] = [Heading("Against public references")]
    if references:
        blocks.append(Bullets([f"{100 * reference.test_accuracy:.2f} %: {reference.what}"
                               for reference in references]))
    blocks.append(Paragraph("Each study's best config by mean validation accuracy, and its test accuracy over "
                            "seeds (the studies train small MLPs for 5 epochs, tuning nothing but the swept "
                            "values):"))
    blocks.append(Table(best_configs(studies, jobs)))
    blocks += [Paragraph(sentence) for sentence in same_numbers(studies)]
    return blocks


def write_studies(sweeps_root: Path, out: Path, claims_file: Path, margin: float = MARGIN,
                  from_jobs: bool = False) -> Path:
    """Every study of ``claims_file`` (see :func:`load_studies`): its report under ``out/studies/``, and
    ``out/studies.md`` beside them; ``from_jobs``: the claims re-decided from the reports' jobs.csv."""
    studies = load_studies(claims_file)
    jobs = {study.name: study_jobs(study, sweeps_root, out, margin, from_jobs) for study in studies}
    claims = claim_rows(studies, jobs, margin)
    source = "the study reports' jobs.csv" if from_jobs else "the sweeps"
    command = (f"sweeplab studies --sweeps {sweeps_root} --out {out} --claims {claims_file} --margin {margin:g}"
               + (" --from-jobs" if from_jobs else ""))
    blocks: list[Block] = [
        Heading("The seed notes' studies, with seeds", level=1),
        Paragraph(f"Generated by `{command}` on {datetime.now():%Y-%m-%d} from {source} and the claims it names. The "
                  "seed notes drew conclusions from single runs whose differences were at most half a point; here "
                  "every config ran with several seeds (n in the tables) on FashionMNIST (Debian's "
                  "dataset-fashion-mnist; note 002 used KMNIST, which cannot be downloaded on our machines), "
                  "training on 54 000 images and selecting on 6 000."),
        Bullets([
            "Accuracies are test accuracy of the weights from each run's best validation epoch, in %: "
            "mean ± sample std over seeds, n = runs with status ok.",
            f"A − B is the difference of the means in accuracy points. The comparison: {METHOD}.",
            f"All {len(claims)} claims on this page are one family, judged at alpha = {ALPHA} with {FAMILY_WHY}. "
            f"Our verdict: 'A > B' (or 'A < B') when the interval excludes 0; 'A ≈ B' when instead it lies "
            f"within ± {margin:g} points (the equivalence margin); 'inconclusive' when neither.",
            "A claim is decided by where the same interval lies: 'A beats B' (A > B) holds when it is above 0, "
            f"and does not hold when it is below 0 or within ± {margin:g}; 'A equals B' (A ~ B) holds when it "
            f"is within ± {margin:g} and does not hold only when it is wholly beyond the margin; 'A is as good "
            f"as B' (A >= B) holds when it is above -{margin:g} and does not hold only when it is below; 'A is "
            f"no better than B', 'no gain' (A <= B) holds when it is below +{margin:g} and does not hold only "
            "when it is above (a loss is no gain). Anything else leaves the claim undecided (not confirmed, not "
            "refuted), with how many seeds per config would likely decide it "
            f"({POWER_METHOD}); rerun the study with `seed=range(0,N) hydra.sweeper.extend=true` on the command "
            "line to get them.",
            "Every study's full report (all configs, validation accuracy, learning curves, each config against "
            "the best) is linked under its heading.",
        ]),
    ]
    if not claims.empty:
        overview = claims[["study", "the note's claim", "claim", "A − B, points (simultaneous 95 % CI)", "ours",
                           "the claim"]]
        blocks += [Heading("All claims"), Table(overview), *more_seeds(studies, claims)]
    blocks += reference_blocks(studies, jobs, claims_file)
    for study in studies:
        blocks += study_blocks(study, jobs[study.name], claims[claims["study"] == study.name], sweeps_root, out,
                               from_jobs)
    path = out / "studies.md"
    path.write_text(to_markdown(blocks, markup=True))  # its own text: commands as code, links
    return path
