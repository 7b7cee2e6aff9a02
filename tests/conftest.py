"""Shared fixtures: in-process config composition, tiny generated IDX datasets, train.py runs."""
from __future__ import annotations

import gc
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, NoReturn

import numpy as np
import pytest
from hold import HOLD
from hydra import compose, initialize_config_dir
from hydra._internal.hydra import Hydra
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig

from sweeplab.app import register_configs
from sweeplab.data import FILES
from sweeplab.idx import write_idx

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
    so a full garbage collection scans only what the tests create. statsmodels' Holm correction (every report)
    runs gc.collect() on each call: over this process's whole heap that took ~0.2 s a call."""
    gc.freeze()


@pytest.fixture
def make_cfg() -> Callable[..., DictConfig]:
    """Compose conf/train.yaml in-process with the given overrides, as train.py would."""

    def make(*overrides: str) -> DictConfig:
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            return compose(config_name="train", overrides=list(overrides))

    return make


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

    import pandas as pd
    import yaml

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
