"""`hydra/sweeper=grid` (the default) in-process, with Hydra's own multirun: what a rerun into the
same sweep dir skips, reruns and numbers. A stand-in task writes the status each job should end with."""
from __future__ import annotations

import importlib.util
import os
import signal
import time
from pathlib import Path

import pytest
from hydra.core.hydra_config import HydraConfig
from hydra.core.plugins import Plugins
from hydra.errors import CompactHydraException
from hydra.plugins.sweeper import Sweeper
from omegaconf import OmegaConf

import sweeplab.job.task
from conftest import TINY, compose_train, file_states, missing_environment, multirun
from sweeplab.jobfiles import METRICS, Metrics, job_key, read_metrics, write_metrics


class StandIn:
    """A task that records (job number, lr) and writes ``status[lr]`` (default ok) to metrics.json."""

    def __init__(self, status: dict[float, str] | None = None):
        self.status = status or {}
        self.ran: list[tuple[int, float]] = []

    def __call__(self, cfg):
        hydra = HydraConfig.get()
        self.ran.append((hydra.job.num, cfg.lr))
        status = self.status.get(cfg.lr, "ok")
        write_metrics(Path(hydra.runtime.output_dir), Metrics(status=status))
        if status == "failed":
            raise RuntimeError("this job fails")
        return cfg.lr


def statuses(sweep_dir: Path) -> dict[str, str]:
    return {p.name: read_metrics(p)["status"] for p in sweep_dir.iterdir() if (p / METRICS).is_file()}


def test_the_sweeper_is_discovered_and_the_default():
    assert "GridSweeper" in [plugin.__name__ for plugin in Plugins.instance().discover(Sweeper)]


@pytest.mark.parametrize(("overrides", "sweeper"), [
    ([], "GridSweeper"),
    (["+sweep=lr"], "GridSweeper"),
    (["hydra/sweeper=optuna"], "OptunaSweeper"),
    # a sweep file's `override /hydra/sweeper: optuna` must win over the app's default sweeper
    (["+sweep=optuna_mlp"], "OptunaSweeper"),
])
def test_the_default_sweeper_is_the_grid_sweeper_and_sweep_files_can_replace_it(overrides, sweeper):
    cfg = compose_train(*overrides, hydra_config=True)
    assert cfg.hydra.sweeper._target_.endswith(sweeper)


def test_a_rerun_skips_finished_jobs_and_reruns_the_rest_into_their_dirs(tmp_path, capsys):
    first = StandIn({0.2: "failed", 0.3: "interrupted", 0.4: "running", 0.5: "diverged"})
    with pytest.raises(RuntimeError, match="this job fails"):  # the failed job fails the sweep, after all ran
        multirun(first, tmp_path, "lr=0.1,0.2,0.3,0.4,0.5,0.6")
    assert [lr for _, lr in first.ran] == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    (tmp_path / "5" / METRICS).unlink()  # killed before it wrote anything
    finished = file_states(tmp_path / "0", tmp_path / "4")

    again = StandIn()
    capsys.readouterr()
    multirun(again, tmp_path, "lr=0.6,0.5,0.4,0.3,0.2,0.1")  # same grid, another order
    assert sorted(again.ran) == [(1, 0.2), (2, 0.3), (3, 0.4), (5, 0.6)]
    assert "2 finished jobs skipped, 4 to run (1 failed, 3 interrupted, 0 new)" in capsys.readouterr().out
    assert file_states(tmp_path / "0", tmp_path / "4") == finished
    assert statuses(tmp_path) == {str(n): s for n, s in enumerate(["ok"] * 4 + ["diverged", "ok"])}

    third = StandIn()
    multirun(third, tmp_path, "lr=0.6,0.5,0.4,0.3,0.2,0.1")
    assert third.ran == []


def test_a_grown_grid_numbers_new_jobs_after_every_existing_dir(tmp_path, capsys):
    multirun(StandIn(), tmp_path, "lr=0.1,0.2", "seed=0")
    (tmp_path / "7").mkdir()  # not a job, but a dir a new job must not land in
    finished = file_states(tmp_path / "0", tmp_path / "1")
    capsys.readouterr()
    grown = StandIn()
    multirun(grown, tmp_path, "seed=0", "lr=1e-1,0.20,0.3,0.4", "hydra.sweeper.extend=true")  # 2 spelled anew
    assert grown.ran == [(8, 0.3), (9, 0.4)]
    assert "2 finished jobs skipped, 2 to run (0 failed, 0 interrupted, 2 new)" in capsys.readouterr().out
    assert file_states(tmp_path / "0", tmp_path / "1") == finished


def test_resume_false_runs_every_job_again(tmp_path):
    multirun(StandIn(), tmp_path, "lr=0.1,0.2")
    again = StandIn()
    multirun(again, tmp_path, "lr=0.1,0.2", "hydra.sweeper.resume=false")
    assert again.ran == [(0, 0.1), (1, 0.2)]


def test_jobs_are_found_through_their_hydra_config_with_any_subdir(tmp_path):
    subdir = "hydra.sweep.subdir=trial_${hydra.job.num}"
    multirun(StandIn({0.2: "interrupted"}), tmp_path, "lr=0.1,0.2", subdir)
    finished = file_states(tmp_path / "trial_0")
    again = StandIn()
    multirun(again, tmp_path, "lr=0.1,0.2", subdir)
    assert again.ran == [(1, 0.2)]
    assert statuses(tmp_path) == {"trial_0": "ok", "trial_1": "ok"}
    assert file_states(tmp_path / "trial_0") == finished


def test_of_two_dirs_with_the_same_overrides_a_finished_one_counts(tmp_path):
    multirun(StandIn(), tmp_path, "lr=0.1")  # job 0 finished
    (tmp_path / "0").rename(tmp_path / "3")  # as if an older sweep had left it under another number
    with pytest.raises(RuntimeError):
        multirun(StandIn({0.1: "failed"}), tmp_path, "lr=0.1", "hydra.sweeper.resume=false")  # job 0 failed
    again = StandIn()
    multirun(again, tmp_path, "lr=0.1")
    assert again.ran == []


def test_a_grid_that_repeats_a_job_does_not_grow_on_a_rerun(tmp_path):
    multirun(StandIn(), tmp_path, "lr=0.1,0.1")
    again = StandIn()
    multirun(again, tmp_path, "lr=0.1,0.1")
    assert again.ran == []


def test_overrides_match_as_values_in_any_order():
    assert job_key(["lr=0.10", "seed=1", "+sweep=lr"]) == job_key(["+sweep=lr", "seed=1", "lr=1e-1"])
    assert job_key(["lr=0.1"]) != job_key(["lr=0.01"])
    assert job_key(["model.hidden=[13,8]"]) == job_key(["model.hidden=[13, 8]"])


def test_sigterm_marks_the_running_job_interrupted_and_a_rerun_finishes_the_sweep(tmp_path, monkeypatch, capsys):
    real_train = sweeplab.job.task.build_model

    def killed_in_the_second_job(cfg, *args, **kwargs):
        if cfg.lr == 0.05:
            os.kill(os.getpid(), signal.SIGTERM)  # `kill PID` while the job trains
            time.sleep(5)
        return real_train(cfg, *args, **kwargs)

    monkeypatch.setattr(sweeplab.job.task, "build_model", killed_in_the_second_job)
    grid = ["lr=0.1,0.05,0.02", *TINY]
    resume_hint = f"1 of 3 jobs finished, 2 left. Rerun .* hydra.sweep.dir={tmp_path} to resume"
    with pytest.raises(CompactHydraException, match=resume_hint):
        multirun(sweeplab.job.task.main, tmp_path, *grid)
    assert statuses(tmp_path) == {"0": "ok", "1": "interrupted"}
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    finished = file_states(tmp_path / "0")

    monkeypatch.setattr(sweeplab.job.task, "build_model", real_train)
    capsys.readouterr()
    multirun(sweeplab.job.task.main, tmp_path, *grid)
    assert "1 finished jobs skipped, 2 to run (0 failed, 1 interrupted, 1 new)" in capsys.readouterr().out
    assert statuses(tmp_path) == {"0": "ok", "1": "ok", "2": "ok"}
    assert file_states(tmp_path / "0") == finished


def test_bad_input_on_a_rerun_fails_its_jobs_and_touches_no_finished_one(tmp_path):
    grid = ["lr=0.1,0.05", *TINY, "epochs=1"]
    multirun(sweeplab.job.task.main, tmp_path, *grid)
    finished = file_states(tmp_path / "0", tmp_path / "1")
    for bad in ("+lrr=0.1", "optimizer.weight_decay=inf", "data.noise=nan"):
        with pytest.raises(CompactHydraException, match="invalid config"):
            multirun(sweeplab.job.task.main, tmp_path, *grid, bad, "hydra.sweeper.extend=true")
    assert file_states(tmp_path / "0", tmp_path / "1") == finished


@pytest.mark.parametrize("launcher", ["basic", "pool", "fused", "joblib"])
def test_a_grown_grid_resumes_on_every_launcher(tmp_path, capsys, launcher):
    common = [*TINY, "epochs=1", "model.width=16", f"hydra/launcher={launcher}"]
    multirun(sweeplab.job.task.main, tmp_path, "seed=0,1", *common)
    finished = file_states(tmp_path / "0", tmp_path / "1")
    capsys.readouterr()
    multirun(sweeplab.job.task.main, tmp_path, "seed=2,1,0", *common, "hydra.sweeper.extend=true")
    assert "2 finished jobs skipped, 1 to run (0 failed, 0 interrupted, 1 new)" in capsys.readouterr().out
    assert statuses(tmp_path) == {"0": "ok", "1": "ok", "2": "ok"}
    assert OmegaConf.load(tmp_path / "2" / ".hydra" / "config.yaml").seed == 2
    assert file_states(tmp_path / "0", tmp_path / "1") == finished


def test_a_rerun_on_joblib_skips_finished_jobs_and_reruns_killed_and_failed_ones(tmp_path, capsys):
    if importlib.util.find_spec("hydra_plugins.hydra_joblib_launcher") is None:
        missing_environment("needs the test extra's hydra-joblib-launcher: pip install -e '.[test]'")
    grid = ["seed=0,1,2", *TINY, "epochs=1", "model.width=16", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]
    multirun(sweeplab.job.task.main, tmp_path, *grid)
    assert statuses(tmp_path) == {"0": "ok", "1": "ok", "2": "ok"}
    # what a kill -9 leaves (a job whose process is gone, still `running`), and a failed job
    write_metrics(tmp_path / "1", Metrics(status="running", process="gone:999999"))
    write_metrics(tmp_path / "2", Metrics(status="failed", reason="RuntimeError: out of memory"))
    finished = file_states(tmp_path / "0")
    capsys.readouterr()

    multirun(sweeplab.job.task.main, tmp_path, *grid)
    assert "1 finished jobs skipped, 2 to run (1 failed, 1 interrupted, 0 new)" in capsys.readouterr().out
    assert statuses(tmp_path) == {"0": "ok", "1": "ok", "2": "ok"}
    assert [OmegaConf.load(tmp_path / num / ".hydra" / "config.yaml").seed for num in "12"] == [1, 2]
    assert file_states(tmp_path / "0") == finished
