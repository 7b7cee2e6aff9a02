"""train.py's ``hydra/launcher=basic`` is the sequential launcher: Hydra's basic launcher (each job through
Hydra's ``run_job``, one after another), with each job's config from ``sweeplab.sweep.compose`` (composed once per
group of jobs that only set values; tests/test_compose_once.py compares those configs with Hydra's). It
writes what Hydra's basic launcher writes and composes the batch before any job runs; it passes Hydra's
``LauncherTestSuite`` in tests/test_hydra_conformance.py."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from omegaconf import OmegaConf

from conftest import multirun

HYDRAS_BASIC = "hydra._internal.core_plugins.basic_launcher.BasicLauncher"
OURS = "hydra_plugins.sweeplab_sequential_launcher.sequential_launcher.SequentialLauncher"


def job_files(sweep_dir: Path) -> dict[str, Any]:
    """Every job's ``.hydra/`` files, with the sweep dir and the launcher (the intended differences) left out."""
    files = {}
    for path in sorted(sweep_dir.glob("*/.hydra/*.yaml")):
        node = OmegaConf.create(path.read_text().replace(str(sweep_dir), "SWEEP"))
        if path.name == "hydra.yaml":
            node.hydra.pop("launcher")
            node.hydra.overrides.hydra = [o for o in node.hydra.overrides.hydra if not o.startswith("hydra.launcher")]
        files[str(path.relative_to(sweep_dir))] = OmegaConf.to_container(node)
    return files


def test_train_pys_basic_launcher_writes_what_hydras_basic_launcher_writes(tmp_path):
    grid = ["lr=0.1,0.01", "seed=0,1", "model.width=${batch_size}", "activation=relu,tanh", "+note=${hydra:job.num}",
            "hydra.sweep.subdir=${hydra.job.override_dirname}"]
    ours = multirun(lambda cfg: (cfg.lr, cfg.seed, cfg.activation.name, cfg.note), tmp_path / "ours", *grid)
    hydras = multirun(lambda cfg: (cfg.lr, cfg.seed, cfg.activation.name, cfg.note), tmp_path / "hydras", *grid,
                      f"hydra.launcher._target_={HYDRAS_BASIC}")
    assert [job.hydra_cfg.hydra.launcher._target_ for batch in ours for job in batch] == [OURS] * 8
    assert [[job.return_value for job in batch] for batch in ours] == [[job.return_value for job in batch]
                                                                       for batch in hydras]
    assert len(job_files(tmp_path / "ours")) == 8 * 3
    assert job_files(tmp_path / "ours") == job_files(tmp_path / "hydras")


def test_a_job_that_does_not_compose_stops_the_batch_before_any_job_runs(tmp_path):
    with pytest.raises(Exception, match="nope"):
        multirun(lambda cfg: 0, tmp_path, "optimizer=sgd,nope")
    assert not [p for p in tmp_path.iterdir() if p.is_dir()]
