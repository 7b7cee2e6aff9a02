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

from sweeplab.config import register_basic_plugins, register_configs
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


@pytest.fixture(autouse=True)
def basic_plugins_registered():
    """After each test, train.py's ``basic`` sweeper and launcher (sweeplab's) as register_configs leaves them:
    ``hydra_restore_singletons`` (Hydra's suites, some tests here) rescans the plugins, which puts Hydra's own
    ``basic`` ones back for every test after it."""
    yield
    register_basic_plugins()
