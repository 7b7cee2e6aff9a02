"""Hydra's submitit launcher (`pip install -e '.[cluster]'`): a grid through real submitit jobs, and the
SLURM example config."""
import pytest
from omegaconf import OmegaConf

from conftest import CONF, TINY, file_states, run_train
from sweeplab.jobfiles import read_metrics

pytest.importorskip("hydra_plugins.hydra_submitit_launcher",
                    reason="needs the cluster extra: pip install -e '.[cluster]'")


@pytest.mark.slow
def test_submitit_local_runs_a_grid_and_resumes_it(tmp_path):
    sweep = tmp_path / "sweep"
    grid = ["-m", "hydra/launcher=submitit_local", f"hydra.sweep.dir={sweep}", *TINY, "epochs=1"]
    result = run_train(*grid, "lr=0.1,0.05", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert [read_metrics(sweep / n)["status"] for n in "01"] == ["ok", "ok"]
    finished = file_states(sweep / "0", sweep / "1")

    result = run_train(*grid, "lr=0.05,0.1,0.02", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "2 finished jobs skipped, 1 to run (0 failed, 0 interrupted, 1 new)" in result.stdout
    assert read_metrics(sweep / "2")["status"] == "ok"
    assert OmegaConf.load(sweep / "2" / ".hydra" / "config.yaml").lr == 0.02
    assert file_states(sweep / "0", sweep / "1") == finished


def test_the_slurm_example_is_submitit_slurm_with_its_resources():
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="train", overrides=["hydra/launcher=slurm", "hydra.launcher.partition=gpu"],
                      return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_ == "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    assert (launcher.partition, launcher.cpus_per_task, launcher.mem_gb, launcher.timeout_min) == ("gpu", 2, 4, 60)
