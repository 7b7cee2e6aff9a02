"""The ``sweeplab`` command: ``sweeplab report DIR [DIR ...] [--out OUT]``."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import NoReturn, Sequence

REPORT_HELP = """\
Write the comparison report of one or several sweep dirs (outputs/sweeps/<name>/, one dir per job):
summary.csv (one row per config), jobs.csv (one row per job), report.md, a self-contained
report.html and PNG plots. Prints the findings and the summary tables.

With one DIR the report goes into that DIR unless --out is given. With several DIRs, shown side by
side, --out is required: a combined report belongs to none of the sweeps."""


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="sweeplab", description="Hyperparameter sweeps: reports.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    report = commands.add_parser("report", help="the comparison report of sweep dirs",
                                 description=REPORT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    report.add_argument("dirs", nargs="+", type=Path, metavar="DIR", help="a sweep dir")
    report.add_argument("--out", type=Path, help="where to write the report (default: the DIR, if only one)")
    args = parser.parse_args(argv)

    if args.out is None and len(args.dirs) > 1:
        fail(report, f"{len(args.dirs)} sweep dirs given: say where the combined report goes with --out OUT")
    run_report(report, args.dirs, args.out or args.dirs[0])


def run_report(parser: argparse.ArgumentParser, dirs: list[Path], out: Path) -> None:
    # Imported here so `sweeplab --help` answers before pandas, matplotlib and optuna load.
    import optuna

    from sweeplab.report.build import write_report
    from sweeplab.report.collect import NotASweepDir

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "A new study created" when rebuilding one
    try:
        report = write_report(dirs, out)
    except (NotASweepDir, OSError) as exc:
        fail(parser, str(exc))
    print(report.text, end="")
    print(f"wrote {len(report.files)} files into {out}: " + ", ".join(path.name for path in report.files))


def fail(parser: argparse.ArgumentParser, message: str) -> NoReturn:
    """One line on stderr and exit status 2, as argparse does for bad arguments (without the usage)."""
    parser.exit(2, f"{parser.prog}: error: {message}\n")


if __name__ == "__main__":
    main()
