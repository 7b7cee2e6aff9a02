"""The fused launcher runs a batch larger than its window (``_impl.WINDOW`` jobs) window by window, so
what it holds does not grow with the sweep: every job still runs, under its own number and dir, a bad
override anywhere in the batch still stops it before any job runs, and each ``JobReturn`` gives back
its job's configs (kept packed)."""
from __future__ import annotations

from pathlib import Path

import pytest
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

import conftest
import sweeplab.job.task
from conftest import TINY
from hydra_plugins.sweeplab_fused_launcher import _impl
from sweeplab.jobfiles import find_jobs, read_metrics

GRID = [*TINY, "epochs=1", "model.width=8", "hydra/launcher=fused"]


def test_a_batch_larger_than_the_window_runs_every_job_in_its_own_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(_impl, "WINDOW", 3)
    batches = conftest.multirun(sweeplab.job.task.main, tmp_path, *GRID, "seed=range(0,7)", "lr=0.1,0.05")
    returns = conftest.job_returns(batches)

    assert [r.hydra_cfg.hydra.job.num for r in returns] == list(range(14))
    for num, ret in enumerate(returns):
        job_dir = Path(ret.hydra_cfg.hydra.runtime.output_dir)
        assert job_dir == tmp_path / str(num)
        assert read_metrics(job_dir)["status"] == "ok"
        assert ret.overrides == conftest.job_overrides(job_dir)
        assert OmegaConf.to_yaml(ret.cfg) == (job_dir / ".hydra" / "config.yaml").read_text()
        assert OmegaConf.to_yaml(ret.hydra_cfg) == (job_dir / ".hydra" / "hydra.yaml").read_text()
        assert ret.return_value == read_metrics(job_dir)["best_val_acc"]
    # the windows' groups were fused: a window's jobs of one shape train as one stacked model
    assert "(fused, 3 members)" in (tmp_path / "0" / "train.log").read_text()


@pytest.mark.parametrize("swept", ["model.width=16,wide", "activation=relu,no_such_activation"])
def test_a_bad_override_in_a_later_window_stops_the_batch_before_any_job_runs(tmp_path, monkeypatch, swept):
    monkeypatch.setattr(_impl, "WINDOW", 2)
    # the grid's jobs: the first value with seeds 0 and 1 (the first window), then the bad value with each
    with pytest.raises(ConfigCompositionException):
        conftest.multirun(sweeplab.job.task.main, tmp_path, *GRID, swept, "seed=0,1")
    assert [job.status for job in find_jobs(tmp_path)] == []
