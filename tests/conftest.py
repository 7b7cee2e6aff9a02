"""Shared fixtures: in-process config composition, tiny generated IDX datasets, train.py runs."""
from __future__ import annotations

import gc
import os
import runpy
import signal
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, NoReturn

import numpy as np
import optuna
import pandas as pd
import pytest
import yaml
from hold import HOLD, held_at
from hydra import compose, initialize_config_dir
from hydra._internal.hydra import Hydra
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, open_dict
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from sweeplab.app import register_configs
from sweeplab.cli import main as sweeplab_cli
from sweeplab.jobfiles import read_metrics
from sweeplab.training.data import FILES
from sweeplab.training.idx import write_idx

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "conf"
FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
# Small and fast: ~0.1 s per epoch; enough signal for accuracy to rise above chance.
TINY = ["data=synthetic", "data.n_train=600", "data.n_test=200", "epochs=2", "batch_size=64"]
# CI sets it (.ci/run): there a test whose environment is missing (PostgreSQL, Chromium, the Debian
# FashionMNIST) fails instead of skipping, so a green CI proves those tests ran.
REQUIRE_ENV = os.environ.get("SWEEPLAB_REQUIRE_ENV") == "1"

register_configs()


@pytest.fixture(autouse=True)
def app_configs() -> None:
    """train.py's registration with Hydra, before every test as train.py does it before composing:
    Hydra's hydra_restore_singletons fixture re-scans the plugins after its test, and the scan puts
    Hydra's own ``basic`` sweeper back in place of the grid sweeper."""
    register_configs()


def pytest_collection_finish(session: pytest.Session) -> None:
    """Freeze every object alive once the test modules are imported (torch, Hydra, Optuna, MLflow, matplotlib),
    so a full garbage collection scans only what the tests create, not the libraries' whole heap."""
    gc.freeze()


@pytest.fixture
def make_cfg() -> Callable[..., DictConfig]:
    """Compose conf/train.yaml in-process with the given overrides, as train.py would."""

    return compose_train


def missing_environment(what: str) -> NoReturn:
    """Skip a test whose environment is missing, with the reason; fail instead under SWEEPLAB_REQUIRE_ENV=1."""
    if REQUIRE_ENV:
        pytest.fail(f"{what} (SWEEPLAB_REQUIRE_ENV=1: required here)")
    pytest.skip(what)


def write_idx_dataset(folder: Path, n_train: int = 120, n_test: int = 40, seed: int = 0, gz: bool = False) -> None:
    """Four real-format IDX files of random 28x28 images and labels 0..9."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    for split, n in (("train", n_train), ("test", n_test)):
        images_stem, labels_stem = FILES[split]
        write_idx(folder / f"{images_stem}{suffix}", rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8))
        write_idx(folder / f"{labels_stem}{suffix}", rng.integers(0, 10, size=n, dtype=np.uint8))


def train_env(**variables: str) -> dict[str, str]:
    """The environment of a train.py subprocess: this one's, tests/ on its path (a config may name a test
    module's class, as hold.HoldAtEpoch), and ``variables``."""
    path = os.pathsep.join(filter(None, [str(REPO / "tests"), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, **variables}


def run_train(*args: str, cwd: Path, timeout: float = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    """``python train.py ARGS`` in ``cwd`` (its outputs/ lands there), output captured."""
    return subprocess.run(
        [sys.executable, str(REPO / "train.py"), *args],
        cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env or train_env(),
    )


@dataclass
class CliRun:
    """What a ``python train.py`` run left: its exit status and output, as ``subprocess.run`` gives them."""
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def train_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> Callable[..., CliRun]:
    """``python train.py ARGS`` in this process: the script itself as ``__main__`` (Hydra's own CLI: ``-m``,
    its error reporting and exit status), in ``cwd``, with ``env`` set, its output captured. For the tests
    where a real process is not the point; ``run_train`` starts one. ``script``: another Hydra app's script
    (the Optuna sweeper's compatibility apps), run the same way."""
    def run(*args: str, cwd: Path, env: dict[str, str] | None = None, script: Path = REPO / "train.py") -> CliRun:
        monkeypatch.chdir(cwd)
        for name, value in (env or {}).items():
            monkeypatch.setenv(name, value)
        monkeypatch.setattr(sys, "argv", [str(script), *args])
        monkeypatch.setattr(gc, "freeze", lambda: None)  # train.py's freeze is for a process about to exit
        capsys.readouterr()
        GlobalHydra.instance().clear()
        returncode = 0
        try:
            runpy.run_path(str(script), run_name="__main__")
        except SystemExit as exit:
            returncode = exit.code if isinstance(exit.code, int) else int(exit.code is not None)
            if returncode and not isinstance(exit.code, int):
                print(exit.code, file=sys.stderr)  # as the interpreter ends on SystemExit("message")
        except Exception:  # as the interpreter ends a script that raised
            traceback.print_exc()
            returncode = 1
        finally:
            GlobalHydra.instance().clear()
        output = capsys.readouterr()
        return CliRun(returncode, output.out, output.err)
    return run


def start_held_train(*args: str, cwd: Path, **popen: Any) -> subprocess.Popen:
    """Start ``python train.py ARGS`` whose ``hold.held_at`` overrides hold a job; ``signal_when_held`` ends it."""
    return subprocess.Popen([sys.executable, str(REPO / "train.py"), *args], cwd=cwd,
                            env=train_env(**{HOLD: str(cwd / "held")}), **popen)


def signal_when_held(proc: subprocess.Popen, cwd: Path, signum: int, log: Path | None = None) -> None:
    """Wait until the held job of ``start_held_train(cwd=cwd)`` stands still, send ``signum`` and wait for the
    process to end. The deadline is a safety net against a run that never gets there, not a speed check;
    ``log``: the process's output file, shown if it never gets there."""
    deadline = time.monotonic() + 300
    while not (cwd / "held").exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()  # leave no run behind a failed test
            output = log.read_text()[-3000:] if log else ""
            pytest.fail(f"the held job never got there (exit code {proc.poll()})\n{output}")
        time.sleep(0.02)
    proc.send_signal(signum)
    proc.wait(timeout=120)


def processes_left(marker: str, timeout: float = 30) -> list[int]:
    """PIDs whose command line contains ``marker``, once none is left or after ``timeout`` seconds:
    processes that were told to stop take a moment to exit, more on a loaded machine."""
    deadline = time.monotonic() + timeout
    while True:
        found = []
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                if marker.encode() in cmdline.read_bytes():
                    found.append(int(cmdline.parent.name))
            except OSError:  # the process ended while we looked
                pass
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def multirun(task: Callable, sweep_dir: Path, *overrides: str) -> Any:
    """``python train.py -m OVERRIDES hydra.sweep.dir=SWEEP_DIR`` in-process, with ``task`` as the task
    function (as Hydra's own sweeper tests run it); returns what the sweeper returns."""
    hydra = Hydra.create_main_hydra_file_or_module(
        calling_file=str(REPO / "train.py"), calling_module=None, config_path="conf", job_name="train")
    try:
        return hydra.multirun(config_name="train", task_function=task,
                              overrides=[*overrides, f"hydra.sweep.dir={sweep_dir}"], with_log_configuration=False)
    finally:
        GlobalHydra.instance().clear()


def file_states(*dirs: Path) -> dict[str, tuple[bytes, int]]:
    """Bytes and mtime of every file under ``dirs``: equal before and after means nothing was touched."""
    return {str(path): (path.read_bytes(), path.stat().st_mtime_ns)
            for folder in dirs for path in sorted(folder.rglob("*")) if path.is_file()}


PG_PASSWORD = "S3cretPW_xyz"  # a study's tests grep every file and output for it


@pytest.fixture(scope="module")
def postgres():
    """A throwaway PostgreSQL cluster on 127.0.0.1 whose user `postgres` logs in over TCP with a password
    (PG_PASSWORD); yields the URL, password included, of an empty database."""
    import shutil
    import socket
    import tempfile

    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not versions:
        missing_environment("PostgreSQL is not installed: `make test-deps` installs Debian's postgresql")
    bindir = versions[-1].parent
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []  # postgres refuses root
    datadir = Path(tempfile.mkdtemp(prefix="sweeplab-pg-"))
    (datadir / "pw").write_text(PG_PASSWORD)
    if as_postgres:
        shutil.chown(datadir, "postgres")
        shutil.chown(datadir / "pw", "postgres")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    def pg(*args, **env):
        subprocess.run([*as_postgres, *map(str, args)], check=True, capture_output=True, env={**os.environ, **env})

    pg(bindir / "initdb", "-D", datadir / "data", "-U", "postgres", "--auth-local=trust",
       "--auth-host=scram-sha-256", f"--pwfile={datadir / 'pw'}")
    pg(bindir / "pg_ctl", "-D", datadir / "data", "-l", datadir / "server.log", "-w", "start",
       "-o", f"-p {port} -c listen_addresses=127.0.0.1 -k {datadir}")
    try:
        pg(bindir / "createdb", "-h", "127.0.0.1", "-p", port, "-U", "postgres", "sweeplab", PGPASSWORD=PG_PASSWORD)
        yield f"postgresql+psycopg2://postgres:{PG_PASSWORD}@127.0.0.1:{port}/sweeplab"
    finally:
        pg(bindir / "pg_ctl", "-D", datadir / "data", "-m", "fast", "-w", "stop")
        shutil.rmtree(datadir, ignore_errors=True)


# ------------------------------------------------------------------ job dirs for the report's tests


def ok_metrics(val: float, test: float, epochs: int = 3, wall: float = 10.0) -> dict[str, Any]:
    """metrics.json of a finished run whose best validation accuracy is ``val``."""
    return {
        "status": "ok", "reason": None, "epochs_completed": epochs, "best_epoch": epochs,
        "best_val_acc": val, "test_acc_at_best_val": test, "val_acc": val, "val_loss": 0.5,
        "test_acc": test, "test_loss": 0.6, "train_acc": val, "train_loss": 0.4, "params": 1000,
        "device": "cpu", "wall_seconds": wall,
    }


def write_job(
    sweep_dir: Path, job: int, overrides: list[str], metrics: dict[str, Any] | None,
    val_curve: list[float] | None = None,
) -> Path:
    """A job dir as train.py leaves it: .hydra/, metrics.json (None: not written), history.csv
    (one row per value of ``val_curve``; by default a rising curve ending at the best val_acc)."""
    import json

    job_dir = sweep_dir / str(job)
    (job_dir / ".hydra").mkdir(parents=True)
    (job_dir / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    values = {key: yaml.safe_load(value) for key, value in (o.lstrip("+").split("=", 1) for o in overrides)}
    config = {"lr": values.get("lr", 0.1), "seed": values.get("seed", 0), "epochs": 3,
              "optimizer": {"name": "sgd", "lr": "${lr}"}}
    (job_dir / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
    if metrics is not None:
        (job_dir / "metrics.json").write_text(json.dumps(metrics))
    if val_curve is None and metrics is not None and metrics.get("best_val_acc") is not None:
        epochs = metrics["epochs_completed"]
        val_curve = [metrics["best_val_acc"] - 0.1 * (epochs - epoch) for epoch in range(1, epochs + 1)]
    if val_curve:
        epochs = range(1, len(val_curve) + 1)
        pd.DataFrame({"epoch": epochs, "train_loss": 1.0, "train_acc": 0.5, "val_loss": 1.0, "val_acc": val_curve,
                      "lr": 0.1, "seconds": 1.0}).to_csv(job_dir / "history.csv", index=False)
    return job_dir


def write_grid(sweep_dir: Path, val_by_lr: dict[float, list[float]], extra: tuple[str, ...] = ()) -> None:
    """A grid over lr, one job per (lr, seed) with the given best validation accuracies; test
    accuracy is 0.1 below, wall time 10 s + seed."""
    job = 0
    for lr, vals in val_by_lr.items():
        for seed, val in enumerate(vals):
            write_job(sweep_dir, job, [f"lr={lr}", f"seed={seed}", "+sweep=lr", "data=synthetic", *extra],
                      ok_metrics(val, val - 0.1, wall=10.0 + seed))
            job += 1


# ------------------------------------------------------------------ composing train.yaml as train.py does
# (make_cfg; the sweepers', launchers' and studies' config tests; the fused launcher's plan tests)


def compose_train(*overrides: str, hydra_config: bool = False) -> DictConfig:
    """conf/train.yaml composed in-process with ``overrides``; ``hydra_config``: with its ``hydra`` node
    (sweeper, launcher, job dirs), as train.py's jobs see it."""
    with initialize_config_dir(config_dir=str(CONF), job_name="train", version_base="1.3"):
        return compose(config_name="train", overrides=list(overrides), return_hydra_config=hydra_config)


def sweep_configs(*overrides_per_job: list[str]) -> list[DictConfig]:
    """Composed configs with their hydra node, numbered as a launcher numbers its jobs."""
    configs = []
    for num, overrides in enumerate(overrides_per_job):
        cfg = compose_train(*overrides, hydra_config=True)
        with open_dict(cfg):
            cfg.hydra.job.num = num
        configs.append(cfg)
    return configs


# ------------------------------------------------------------------ same run, compared (checkpoint, resume, fused)

NOT_COMPARED = ["wall_seconds", "process"]  # differ between any two runs


def outcome(job_dir: Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """A job dir's history.csv (without its timings) and metrics.json (without NOT_COMPARED)."""
    history = pd.read_csv(job_dir / "history.csv").drop(columns="seconds")
    metrics = {k: v for k, v in read_metrics(job_dir).items() if k not in NOT_COMPARED}
    return history, metrics


def assert_same_run(a: Path, b: Path) -> None:
    """The job dirs ``a`` and ``b`` hold exactly the same run."""
    pd.testing.assert_frame_equal(outcome(a)[0], outcome(b)[0])
    assert outcome(a)[1] == outcome(b)[1]


# A fused member against its run alone: a stacked layer is a batched matmul whose float summation order
# differs from a plain one, so the last bits differ and grow a little per step (test_fused.py's docstring).
LOSS_RTOL, ACC_ATOL = 1e-3, 0.01


def assert_same_run_within_tolerance(basic: Path, fused: Path, epochs: int) -> None:
    """The job dirs ``basic`` and ``fused`` hold the same run's history.csv and metrics.json, up to
    the fused tolerance (LOSS_RTOL, ACC_ATOL)."""
    a, b = read_metrics(basic), read_metrics(fused)
    history_a, history_b = pd.read_csv(basic / "history.csv"), pd.read_csv(fused / "history.csv")
    assert len(history_a) == len(history_b) == epochs
    for column in ("train_loss", "val_loss"):
        assert history_b[column].tolist() == pytest.approx(history_a[column].tolist(), rel=LOSS_RTOL), column
    for column in ("train_acc", "val_acc"):
        assert history_b[column].tolist() == pytest.approx(history_a[column].tolist(), abs=ACC_ATOL), column
    assert history_b["lr"].tolist() == history_a["lr"].tolist()
    for key in ("val_loss", "test_loss", "train_loss"):
        assert b[key] == pytest.approx(a[key], rel=LOSS_RTOL), key
    for key in ("best_val_acc", "test_acc_at_best_val", "val_acc", "test_acc", "train_acc"):
        assert b[key] == pytest.approx(a[key], abs=ACC_ATOL), key
    keys = ("status", "best_epoch", "epochs_completed", "params")
    assert [b[key] for key in keys] == [a[key] for key in keys]


# ------------------------------------------------------------------ an Optuna study signalled mid-trial
# (test_optuna_resume.py, test_optuna_faults.py)

RESUME_TRIALS = 4
# tiny trials; trial 1 stands still at the end of its epoch 2 (hold.py) until the test's signal, so the
# signal lands mid-trial; short heartbeats so a killed trial is found quickly
RESUME_COMMAND = [
    "-m", "hydra/sweeper=optuna", "hydra.sweeper.study_name=resume", f"hydra.sweeper.n_trials={RESUME_TRIALS}",
    "hydra.sweeper.heartbeat_interval=1", "hydra.sweeper.grace_period=3",
    "hydra/sweeper/sampler=random", "hydra.sweeper.sampler.seed=0", "lr=interval(0.05, 0.5)",
    "data=synthetic", "data.n_train=600", "data.n_test=200", "epochs=3", "batch_size=64", *held_at(1, 2)]


def start_then_signal(tmp_path: Path, signum: int, *extra: str, command: list[str] = RESUME_COMMAND) -> tuple[int, str]:
    """Start the sweep, wait until trial 1 stands still after its epoch 2, then send ``signum`` to the main
    process (as from a terminal, even when this test itself runs in a background job that ignores SIGINT);
    returns its exit code and output."""
    with open(tmp_path / "first.log", "w") as log:
        proc = start_held_train(*command, *extra, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        signal_when_held(proc, tmp_path, signum, log=tmp_path / "first.log")
    return proc.returncode, (tmp_path / "first.log").read_text()


# ------------------------------------------------------------------ report inputs: mixed statuses, an Optuna sweep
# (test_report.py, test_report_optuna.py, test_report_browser.py)


def write_mixed_statuses(sweep: Path) -> None:
    """lr=0.1: two ok seeds, then failed, diverged, pruned; lr=0.01: ok, running, no metrics.json."""
    lr1, lr2 = ["lr=0.1", "+sweep=lr"], ["lr=0.01", "+sweep=lr"]
    write_job(sweep, 0, [*lr1, "seed=0"], ok_metrics(0.80, 0.78))
    write_job(sweep, 1, [*lr1, "seed=1"], ok_metrics(0.84, 0.80))
    write_job(sweep, 2, [*lr1, "seed=2"], {"status": "failed", "reason": "RuntimeError: CUDA out of memory " * 5,
                                             "wall_seconds": 1.5})
    diverged = ok_metrics(0.30, 0.25) | {"status": "diverged", "reason": "val_loss is nan", "val_loss": None,
                                         "train_loss": None, "test_loss": None}
    write_job(sweep, 3, [*lr1, "seed=3"], diverged, val_curve=[0.3, 0.1])
    pruned = ok_metrics(0.20, 0.20, epochs=1) | {"status": "pruned", "reason": "pruned at epoch 1"}
    write_job(sweep, 4, [*lr1, "seed=4"], pruned, val_curve=[0.2])
    write_job(sweep, 5, [*lr2, "seed=0"], ok_metrics(0.70, 0.69))
    write_job(sweep, 6, [*lr2, "seed=1"], {"status": "running"}, val_curve=[0.5])
    write_job(sweep, 7, [*lr2, "seed=2"], None)  # killed before it wrote metrics.json


OPTUNA_SPACE = {
    "lr": FloatDistribution(1e-4, 1.0, log=True),
    "model.width": IntDistribution(16, 256),
    "optimizer": CategoricalDistribution(["sgd", "adam"]),
}
# (state, objective values) per trial, in trial order; the accuracy rises with width.
TRIALS = [
    (TrialState.COMPLETE, [0.60]),
    (TrialState.COMPLETE, [0.75]),
    (TrialState.PRUNED, None),
    (TrialState.COMPLETE, [0.70]),
    (TrialState.FAIL, None),
    (TrialState.COMPLETE, [0.85]),
    (TrialState.COMPLETE, [0.80]),
    (TrialState.RUNNING, None),
]
JOB_STATUS = {TrialState.PRUNED: "pruned", TrialState.FAIL: "failed", TrialState.RUNNING: "running"}


def write_optuna_sweep(sweep: Path, directions: list[str], values_of: list[list[float] | None]) -> optuna.Study:
    """Run a study of TRIALS by ask/tell in ``sweep/optuna.db`` and leave the files the sweeper leaves."""
    sweep.mkdir(parents=True)
    storage = f"sqlite:///{sweep / 'optuna.db'}"
    study = optuna.create_study(study_name="test-study", storage=storage, directions=directions,
                                sampler=optuna.samplers.RandomSampler(seed=0))
    for number, ((state, _), values) in enumerate(zip(TRIALS, values_of, strict=True)):
        trial = study.ask(OPTUNA_SPACE)
        overrides = [f"{key}={value}" for key, value in trial.params.items()] + ["+sweep=optuna_test"]
        if state == TrialState.COMPLETE:
            study.tell(trial, values)
            write_job(sweep, number, overrides, ok_metrics(values[0], values[0] - 0.05))
        elif state == TrialState.RUNNING:
            write_job(sweep, number, overrides, {"status": "running"})
        else:
            study.tell(trial, state=state)
            metrics = {"status": JOB_STATUS[state], "reason": state.name, "wall_seconds": 1.0}
            write_job(sweep, number, overrides, metrics)
    best_trials = [{"number": t.number, "values": list(t.values), "params": t.params} for t in study.best_trials]
    results = {"study_name": study.study_name, "storage": storage, "directions": directions, "n_trials": len(TRIALS),
               **({"best": best_trials[0]} if len(directions) == 1 else {"pareto": best_trials})}
    (sweep / "optimization_results.yaml").write_text(yaml.safe_dump(results))
    study.trials_dataframe().to_csv(sweep / "trials.csv", index=False)
    return study


# ------------------------------------------------------------------ multirun's JobReturns, flat
# (test_fused.py, test_fused_job_setup.py)


def job_returns(batches: list) -> list:
    """The JobReturns of ``multirun``'s batches, in launch order."""
    return [job for batch in batches for job in batch]


# ------------------------------------------------------------------ reading results back
# (test_cli.py, test_multirun.py; the Optuna sweeper's tests; the report's exit codes)


def job_overrides(job_dir: Path) -> list[str]:
    """The overrides Hydra saved in the job dir's .hydra/overrides.yaml."""
    return yaml.safe_load((job_dir / ".hydra" / "overrides.yaml").read_text())


def trial_states(study: optuna.Study) -> list[str]:
    """The state of each of the study's trials, in trial order: ``["COMPLETE", "PRUNED", ...]``."""
    return [t.state.name for t in study.trials]


def report_exit_code(*args: str) -> int:
    """``sweeplab report ARGS`` in-process, for a report that must end with a non-zero exit code."""
    with pytest.raises(SystemExit) as info:
        sweeplab_cli(["report", *args])
    return info.value.code


# ------------------------------------------------------------------ a small filesystem
# (test_full_disk.py, test_optuna_disk_full.py)


@pytest.fixture
def small_disk(tmp_path: Path) -> Any:
    """A 1 MB tmpfs mounted on a fresh dir (as root), unmounted after the test."""
    mount = tmp_path / "disk"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True,
                          text=True, timeout=30)
    if made.returncode != 0:
        missing_environment(f"cannot mount a tmpfs here: {made.stderr.strip() or made.returncode}")
    yield mount
    # lazily: a log file an in-process sweep left open (Hydra's job logging keeps its last) must not keep it
    subprocess.run(["umount", "--lazy", str(mount)], timeout=30, check=True)


def fill_disk(disk: Path) -> Path:
    """Fill the filesystem of ``disk`` with one file (returned: deleting it makes the room again)."""
    filler = disk / "filler"
    try:
        filler.write_bytes(b"\0" * (2 << 20))
    except OSError:
        pass  # what fitted stays: the disk is full
    return filler
