"""A fused member's job is set up as Hydra's own ``run_job`` sets up a job: the same ``.hydra/`` files,
the same environment (``hydra.job.env_set``), working dir and Hydra config while its callbacks run, and
the same ``JobReturn`` fields. Compared through public interfaces: the same 2-job grid on the basic
launcher (Hydra's ``run_job``) and on the fused launcher, whatever either does inside."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from omegaconf import OmegaConf

import conftest
import sweeplab.job.task
from conftest import TINY

SEEN: dict[tuple[str, int], dict[str, Any]] = {}  # (launcher, job num) -> what EnvProbe saw


class EnvProbe(Callback):
    """A Hydra callback: what a job's environment, working dir and Hydra config are when it starts and ends."""

    def on_job_start(self, config: Any, **kwargs: Any) -> None:
        hydra = HydraConfig.get()
        SEEN[(hydra.launcher._target_, hydra.job.num)] = {
            "env": {k: v for k, v in os.environ.items() if k.startswith("PROBE_")}, "cwd": os.getcwd(),
            "output_dir": hydra.runtime.output_dir, "job": OmegaConf.to_container(hydra.job, resolve=True),
        }

    def on_job_end(self, config: Any, job_return: Any, **kwargs: Any) -> None:
        hydra = HydraConfig.get()
        SEEN[(hydra.launcher._target_, hydra.job.num)]["ended_in"] = hydra.runtime.output_dir


def hydra_files(job_dir: Path, sweep_dir: Path) -> dict[str, Any]:
    """The job's ``.hydra/`` files, with its sweep dir and its launcher (the one intended difference) left out."""
    files = {}
    for path in sorted((job_dir / ".hydra").iterdir()):
        node = OmegaConf.create(path.read_text().replace(str(sweep_dir), "SWEEP"))
        if path.name == "hydra.yaml":
            node.hydra.pop("launcher")
            node.hydra.runtime.choices.pop("hydra/launcher")
            node.hydra.overrides.hydra = [o for o in node.hydra.overrides.hydra
                                       if not o.startswith(("hydra/launcher=", "hydra.launcher."))]
        files[path.name] = OmegaConf.to_container(node)
    return files


def test_a_fused_member_is_set_up_as_hydras_run_job_sets_up_a_job(tmp_path):
    grid = [*TINY, "epochs=1", "model.width=16", "seed=0,1", "+hydra.job.env_set.PROBE_ENV=set-by-hydra",
            f"+hydra.callbacks.probe._target_={__name__}.EnvProbe"]
    returns = {}
    basic_target, fused_target = "hydra._internal.core_plugins.basic_launcher.BasicLauncher", \
        "hydra_plugins.sweeplab_fused_launcher.fused_launcher.FusedLauncher"
    # Hydra's own basic launcher (train.py's hydra/launcher=basic is sweeplab's sequential launcher)
    for launcher, chosen in (("basic", f"hydra.launcher._target_={basic_target}"), ("fused", "hydra/launcher=fused")):
        batches = conftest.multirun(sweeplab.job.task.main, tmp_path / launcher, *grid, chosen)
        returns[launcher] = conftest.job_returns(batches)
    assert "(fused, 2 members)" in (tmp_path / "fused" / "1" / "train.log").read_text()  # it really was fused

    for num in (0, 1):
        basic_dir, fused_dir = tmp_path / "basic" / str(num), tmp_path / "fused" / str(num)
        assert hydra_files(fused_dir, tmp_path / "fused") == hydra_files(basic_dir, tmp_path / "basic")
        basic, fused = SEEN[(basic_target, num)], SEEN[(fused_target, num)]
        assert fused["env"] == basic["env"] == {"PROBE_ENV": "set-by-hydra"}
        assert fused["cwd"] == basic["cwd"]
        assert (fused["output_dir"], basic["output_dir"]) == (str(fused_dir), str(basic_dir))
        assert (fused["ended_in"], basic["ended_in"]) == (str(fused_dir), str(basic_dir))
        assert fused["job"] == basic["job"]
        assert sorted(p.name for p in fused_dir.iterdir()) == sorted(p.name for p in basic_dir.iterdir())

    for basic, fused in zip(returns["basic"], returns["fused"], strict=True):
        assert (fused.overrides, fused.working_dir, fused.task_name, fused.status) == \
            (basic.overrides, basic.working_dir, basic.task_name, basic.status)
        assert OmegaConf.to_container(fused.cfg) == OmegaConf.to_container(basic.cfg)
        assert fused.hydra_cfg.hydra.runtime.output_dir.endswith(f"fused/{fused.hydra_cfg.hydra.job.num}")
    assert os.environ.get("PROBE_ENV") is None  # restored after the jobs
