"""Hydra grids over the real config in-process: Hydra's sweep runner launches sweeplab.job.task.main for
each job (as train.py -m does), on small synthetic data. The terminal side (exit status, messages)
is in test_cli.py."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from omegaconf import OmegaConf

import sweeplab.job.task
from conftest import REPO, TINY, job_overrides
from sweeplab.jobfiles import read_metrics


@pytest.fixture
def grid(hydra_sweep_runner, hydra_restore_singletons, tmp_path):
    """Run ``train.py -m OVERRIDES`` in-process into tmp_path/sweep; return its job dirs by number."""

    def run(*overrides: str) -> list[Path]:
        sweep_dir = tmp_path / "sweep"
        runner = hydra_sweep_runner(calling_file=str(REPO / "train.py"), calling_module=None,
                                    task_function=sweeplab.job.task.main, config_path="conf", config_name="train",
                                    overrides=list(overrides), temp_dir=sweep_dir)
        runner.__enter__()  # runs the grid; its __exit__ would delete the dir read below
        return sorted((p for p in sweep_dir.iterdir() if p.is_dir()), key=lambda p: int(p.name))

    return run


def test_a_grid_over_lr_gives_three_jobs_in_one_sweep_dir(grid):
    jobs = grid("lr=0.1,0.01,0.001", *TINY)
    assert [job.name for job in jobs] == ["0", "1", "2"]
    lrs = []
    for job in jobs:
        assert read_metrics(job)["status"] == "ok"
        config = OmegaConf.load(job / ".hydra" / "config.yaml")
        lrs.append(config.optimizer.lr)  # resolves ${lr}
        assert pd.read_csv(job / "history.csv")["lr"].iloc[0] == lrs[-1]
    assert lrs == [0.1, 0.01, 0.001]


def test_a_grid_over_a_model_key_with_a_group_choice(grid):
    jobs = grid("model.width=64,128,256", "activation=sigmoid", *TINY)
    assert [read_metrics(job)["params"] for job in jobs] == [784 * w + w + w * 10 + 10 for w in (64, 128, 256)]
    assert all("activation=sigmoid" in job_overrides(job) for job in jobs)


def test_a_grid_over_a_group_and_a_key_is_the_product(grid):
    jobs = grid("optimizer=sgd,adam", "batch_size=32,128", *TINY[:-1])
    combos = [tuple(o for o in job_overrides(job) if o.startswith(("optimizer=", "batch_size="))) for job in jobs]
    assert sorted(combos) == sorted((f"optimizer={o}", f"batch_size={b}") for o in ("sgd", "adam") for b in (32, 128))
    assert all(read_metrics(job)["status"] == "ok" for job in jobs)
