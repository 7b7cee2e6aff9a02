"""The ``sweeplab`` command: ``sweeplab report DIR [DIR ...] [--out OUT] [--margin POINTS]`` and
``sweeplab studies [--sweeps DIR] [--out DIR] [--claims FILE] [--margin POINTS] [--from-jobs]``."""
from __future__ import annotations

import argparse
import math
import os
from importlib.metadata import version
from pathlib import Path
from typing import NoReturn, Sequence

from sweeplab.job.trial import STORAGE
from sweeplab.report import MARGIN

REPORT_HELP = """\
Write the comparison report of one or several sweep dirs (outputs/sweeps/<name>/, one dir per job):
summary.csv (one row per config), jobs.csv (one row per job), report.md, a self-contained
report.html and PNG plots. Prints the findings and the summary tables.

With one DIR the report goes into that DIR unless --out is given. With several DIRs, shown side by
side, --out is required: a combined report belongs to none of the sweeps.

Each config is compared with its sweep's best: the difference in points, paired by seed on the seeds
both ran, with a simultaneous interval (Bonferroni over every pair of configs) and a verdict read off
it: worse than the best, as good as the best within --margin points, or inconclusive with the seeds
that would likely decide it.

An Optuna study (of train.py or of any Hydra app) is read from its storage: a storage file inside
the DIR, or the URL given by --storage or $SWEEPLAB_STORAGE (a server the DIR names is never opened
on its own; passwords are never shown); without it, from the DIR's trials.csv. Its report adds the
optimisation history, parameter importances, every trial with its state, values and intermediate
values, and for several objectives the Pareto front (also marked in jobs.csv's `pareto` column).

Exit status: 0 when every job dir was read; 3 when the report was written but some job dirs could
not be read (a truncated metrics.json, a malformed history.csv, no .hydra/): they are counted and
listed as `unreadable`, with the file and the reason; 2 when a DIR is not a sweep dir, holds
neither metrics.json files nor an Optuna study, or a file cannot be read or written (the message
names it; each report file is replaced whole or not at all)."""


STUDIES_HELP = """\
Write docs/studies.md from the seed studies' sweep dirs (outputs/sweeps/neurons, depth, activation,
lr_sgd, lr_adam, batch_size, optimizer): each study's full report under docs/studies/<name>/, and
one page with the seed notes' numbers beside ours and a verdict on each of the notes' claims (read
from --claims), with simultaneous intervals over all of them; an undecided claim says how many seeds
per config would likely decide it."""


def margin_points(text: str) -> float:
    """The equivalence margin: a finite number of accuracy points > 0."""
    try:
        margin = float(text)
    except ValueError:
        margin = math.nan
    if not 0 < margin < math.inf:
        raise argparse.ArgumentTypeError(f"--margin={text}: must be a finite number of accuracy points > 0")
    return margin


UNREADABLE_STATUS = 3  # the report was written, but some job dirs could not be read


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="sweeplab", description="Hyperparameter sweeps: reports.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {version('sweeplab')}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    report = commands.add_parser("report", help="the comparison report of sweep dirs",
                                 description=REPORT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    report.add_argument("dirs", nargs="+", type=Path, metavar="DIR", help="a sweep dir")
    report.add_argument("--out", type=Path, help="where to write the report (default: the DIR, if only one)")
    report.add_argument("--margin", type=margin_points, default=MARGIN, metavar="POINTS",
                        help=f"equivalence margin in accuracy points (default {MARGIN:g})")
    report.add_argument("--storage", default=os.environ.get(STORAGE), metavar="URL",
                        help=f"the Optuna storage of the studies (default: ${STORAGE} if set, else only a storage "
                             "file inside the sweep dir is opened, never a server the dir names)")
    studies = commands.add_parser("studies", help="docs/studies.md: the seed notes' studies beside our runs",
                                  description=STUDIES_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    studies.add_argument("--sweeps", type=Path, default=Path("outputs/sweeps"), help="where the study sweeps are")
    studies.add_argument("--out", type=Path, default=Path("docs"), help="where studies.md and studies/ go")
    studies.add_argument("--claims", type=Path, default=Path("docs/claims.yaml"), metavar="FILE",
                         help="the studies and the notes' claims (default docs/claims.yaml)")
    studies.add_argument("--margin", type=margin_points, default=MARGIN, metavar="POINTS",
                         help=f"equivalence margin in accuracy points (default {MARGIN:g})")
    studies.add_argument("--from-jobs", action="store_true",
                         help="re-decide the claims from <out>/studies/<name>/jobs.csv, without the sweep dirs "
                              "(the study reports stay as they are)")
    args = parser.parse_args(argv)

    if args.command == "studies":
        run_studies(studies, args.sweeps, args.out, args.claims, args.margin, args.from_jobs)
        return
    if args.out is None and len(args.dirs) > 1:
        fail(report, f"{len(args.dirs)} sweep dirs given: say where the combined report goes with --out OUT")
    run_report(report, args.dirs, args.out or args.dirs[0], args.margin, args.storage)


def run_report(parser: argparse.ArgumentParser, dirs: list[Path], out: Path, margin: float,
               storage: str | None) -> None:
    # Imported here so `sweeplab --help` answers before pandas, matplotlib and optuna load.
    import optuna

    from sweeplab.report.build import write_report
    from sweeplab.report.collect import NotASweepDir
    from sweeplab.report.files import ReportError

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "A new study created" when rebuilding one
    try:
        report = write_report(dirs, out, margin, storage)
    except (NotASweepDir, ReportError, OSError) as exc:
        fail(parser, str(exc))
    print(report.text, end="")
    print(f"wrote {len(report.files)} files into {out}: " + ", ".join(path.name for path in report.files))
    if report.unreadable:
        parser.exit(UNREADABLE_STATUS, f"{parser.prog}: {report.unreadable} job dir(s) unreadable, "
                                       "listed in the report (exit status 3)\n")


def run_studies(parser: argparse.ArgumentParser, sweeps: Path, out: Path, claims: Path, margin: float,
                from_jobs: bool) -> None:
    from sweeplab.report.collect import NotASweepDir
    from sweeplab.report.studies import BadClaimsFile, write_studies

    try:
        path = write_studies(sweeps, out, claims, margin, from_jobs)
    except BadClaimsFile as exc:
        fail(parser, str(exc))
    except (NotASweepDir, OSError) as exc:
        fail(parser, f"{exc} (run the studies first: see sweeps/*.yaml)")
    print(f"wrote {path} and the reports under {out / 'studies'}")


def fail(parser: argparse.ArgumentParser, message: str) -> NoReturn:
    """One line on stderr and exit status 2, as argparse does for bad arguments (without the usage)."""
    parser.exit(2, f"{parser.prog}: error: {message}\n")


if __name__ == "__main__":
    main()
