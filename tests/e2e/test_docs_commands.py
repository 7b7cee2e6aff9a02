"""Every command in a fenced block of README.md and docs/guide/*.md is run, so the manual cannot go stale.

``python train.py ...`` runs in-process as Hydra's CLI runs it, shrunk (synthetic data, one epoch, two
Optuna trials, a sweep dir of its own); one that needs what a test machine lacks (a SLURM cluster, a
download) is composed instead. A documented error prints what the docs show. ``sweeplab report`` runs
on tiny sweeps made for it; ``make`` targets must exist; servers (MLflow, TensorBoard, the dashboard)
must be installed. A new command that fits none of these fails :func:`test_every_command_is_classified`.
"""
from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import open_dict

from conftest import REPO, compose_train, missing_environment
from sweeplab.cli import main as sweeplab
from sweeplab.config import problems
from sweeplab.jobfiles import FINISHED, read_metrics

DOCS = [REPO / "README.md", *sorted((REPO / "docs" / "guide").glob("*.md"))]
# Added unless the command sets the key itself.
SHRINK = {"data": "synthetic", "data.n_train": "300", "data.n_test": "100", "threads": "1"}
# Set whatever the command says.
FORCE = {"epochs": "1", "hydra.sweeper.n_trials": "2", "hydra.sweeper.n_workers": "1"}
# What a test machine lacks: these commands are composed, not run.
COMPOSE_ONLY = {
    "hydra/launcher=slurm": "needs a SLURM cluster",
    "data=torchvision": "downloads a dataset",
}
# Commands that are not this project's CLI: each must be runnable in another sense (see the tests).
SERVERS = ("optuna-dashboard", "mlflow", "tensorboard")
NOT_RUN = {"python my_app.py":
           "an example of a user's own Hydra app (tests/plugins/optuna/test_optuna_compat.py runs such apps)"}


def fenced_commands() -> list[tuple[str, list[str]]]:
    """(command, documented output lines) of every command line in a fenced block, in order, once each.
    A line starting with ``$ `` is a command and the lines after it, up to the next command, its output."""
    found: dict[str, list[str]] = {}
    for doc in DOCS:
        for block in re.findall(r"^```[a-z]*\n(.*?)^```", doc.read_text(), re.S | re.M):
            if block.lstrip().startswith(("#", "_target_", "defaults")):
                continue  # a YAML file
            lines = block.splitlines()
            prompted = any(line.startswith("$ ") for line in lines)
            output: list[str] = []
            for line in lines:
                if prompted and not line.startswith("$ "):
                    output.append(line)
                    continue
                command = shlex.split(line.removeprefix("$ "), comments=True)
                output = found.setdefault(shlex.join(command), []) if command else output
    return list(found.items())


COMMANDS = fenced_commands()


def kind(command: str) -> str:
    words = shlex.split(command)
    if words[:2] == ["python", "train.py"]:
        return "train"
    if words[0] in ("sweeplab", "make") or words[0] in SERVERS:
        return words[0] if words[0] not in SERVERS else "server"
    if " ".join(words[:2]) in NOT_RUN:
        return "not run"
    return "unknown"


def of_kind(name: str) -> list[str]:
    return [command for command, _ in COMMANDS if kind(command) == name]


def test_every_command_is_classified():
    assert len(COMMANDS) >= 20
    assert [command for command, _ in COMMANDS if kind(command) == "unknown"] == []


# ------------------------------------------------------------------ python train.py


def keys_of(args: list[str]) -> set[str]:
    return {arg.split("=", 1)[0].lstrip("+~") for arg in args if "=" in arg}


def shrunk(args: list[str], sweep_dir: Path) -> list[str]:
    """``args`` with the shrinking overrides, and a sweep dir of its own unless a named study
    (``+sweep=``) or the command names one (a report may read it afterwards)."""
    args = [arg for arg in args if arg.split("=", 1)[0] not in FORCE]
    given = keys_of(args)
    extra = dict(SHRINK)
    if "seed" not in given and "sweep" in given:
        extra["seed"] = "0"  # a named study's seeds: one is enough here
    if "hydra.sweep.dir" not in given and "sweep" not in given:
        extra["hydra.sweep.dir"] = str(sweep_dir)
    extra["hydra.run.dir"] = str(sweep_dir / "run")
    if "data" in given:  # the command's own data (a bring-your-own example): small already
        for key in ("data", "data.n_train", "data.n_test"):
            extra.pop(key)
    forced = {key: value for key, value in FORCE.items() if "sweeper" not in key or "optuna" in " ".join(args)}
    return [*args, *(f"{key}={value}" for key, value in {**extra, **forced}.items() if key not in given)]


def first_job(args: list[str]) -> list[str]:
    """The overrides of the first job of ``args``'s sweep; search-space keys (``interval``) left out."""
    parser = OverridesParser.create()
    firsts = []
    for override in parser.parse_overrides([arg for arg in args if not arg.startswith("-")]):
        text = override.input_line
        if override.is_sweep_override():
            try:
                text = f"{override.get_key_element()}={next(iter(override.sweep_string_iterator()))}"
            except Exception:  # an Optuna distribution: not a value
                continue
        firsts.append(text)
    return firsts


def compose_only(command: str) -> bool:
    return any(needle in command for needle in COMPOSE_ONLY)


@pytest.mark.parametrize("command", [c for c, out in COMMANDS if kind(c) == "train" and compose_only(c)])
def test_a_command_that_needs_what_is_absent_composes_and_validates(command):
    args = first_job(shlex.split(command)[2:])
    cfg = compose_train(*args, hydra_config=True)
    assert cfg.hydra.launcher is not None
    with open_dict(cfg):
        del cfg["hydra"]
    assert problems(cfg) == []


ERRORS = [(c, out) for c, out in COMMANDS if kind(c) == "train" and any("invalid config" in line or
                                                                       "Could not find" in line for line in out)]


@pytest.mark.parametrize(("command", "documented"), ERRORS, ids=[c for c, _ in ERRORS])
def test_a_documented_error_prints_what_the_docs_show(command, documented, tmp_path, train_cli):
    result = train_cli(*shlex.split(command)[2:], cwd=tmp_path)
    assert result.returncode == 1
    printed = [line.strip() for line in (result.stdout + result.stderr).splitlines()]
    shown = [line.strip() for line in documented if line.strip() and line.strip() != "..."]
    assert [line for line in shown if line not in printed] == []


RUN = [c for c in of_kind("train") if c not in dict(ERRORS) and not compose_only(c)]


@pytest.mark.slow
@pytest.mark.parametrize("command", RUN)
def test_a_documented_command_runs_tiny(command, monkeypatch, tmp_path, hydra_restore_singletons, train_cli):
    (tmp_path / "examples").symlink_to(REPO / "examples")  # hydra.searchpath=[file://examples/conf]
    monkeypatch.syspath_prepend(str(REPO))  # as train.py's folder is on the path of `python train.py`
    args = shlex.split(command)[2:]
    result = train_cli(*shrunk(args, tmp_path / "sweep"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    statuses = [read_metrics(path.parent)["status"] for path in tmp_path.rglob("metrics.json")]
    # a search may diverge or prune some trials; every job finishes, and one at least trains to the end
    assert set(statuses) <= set(FINISHED) and "ok" in statuses, statuses


# ------------------------------------------------------------------ sweeplab, make, servers


@pytest.mark.slow
@pytest.mark.parametrize("command", of_kind("sweeplab"))
def test_a_documented_report_command_writes_its_report(command, tmp_path, hydra_restore_singletons, train_cli):
    args = shlex.split(command)[1:]
    assert args[0] == "report"
    dirs = [arg for arg in args[1:] if not arg.startswith("--") and arg != args[args.index("--out") + 1]] \
        if "--out" in args else args[1:]
    for sweep_dir in dirs:  # a tiny sweep of the kind the docs name there
        grid = ["-m", "hydra/sweeper=optuna", "lr=tag(log, interval(1e-3, 1e-1))"] if "optuna" in sweep_dir \
            else ["-m", "lr=0.1,0.01", "seed=0,1"]
        assert train_cli(*shrunk(grid, tmp_path / sweep_dir), cwd=tmp_path).returncode == 0
    sweeplab(args)
    out = Path(args[args.index("--out") + 1]) if "--out" in args else Path(dirs[0])
    assert (out / "report.md").is_file() and (out / "summary.csv").is_file()


@pytest.mark.parametrize("command", of_kind("make"))
def test_a_documented_make_target_exists(command):
    target = shlex.split(command)[1]
    makefile = (REPO / "Makefile").read_text()
    assert re.search(rf"^{re.escape(target)}:.*## ", makefile, re.M), f"no documented target {target} in the Makefile"


@pytest.mark.parametrize("command", of_kind("server"))
def test_a_documented_server_is_installed(command):
    tool = shlex.split(command)[0]
    if not (Path(sys.executable).parent / tool).exists():
        missing_environment(f"{tool} is not installed: pip install -e '.[test,dashboard]'")
