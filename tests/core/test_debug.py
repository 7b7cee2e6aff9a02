"""The debug configs (conf/debug/): fast dev run, overfit a few batches, limited data, profiler."""
import pandas as pd
import pytest
import torch

from conftest import CONF, REPO, TINY, compose_train
from sweeplab.config import problems
from sweeplab.job.task import run
from sweeplab.jobfiles import read_metrics
from sweeplab.training.data import load_splits

DATA = TINY[:3]  # the tiny synthetic data; epochs and batch size come from the debug option


def split_sizes(cfg):
    splits = load_splits(cfg.data, torch.device("cpu"))
    return len(splits.train_y), len(splits.val_y), len(splits.test_y)


@pytest.mark.parametrize("option", ["default", "fdr", "overfit", "limit", "profile"])
def test_every_debug_option_composes_and_sends_runs_to_outputs_debug(make_cfg, option):
    assert option in {p.stem for p in (CONF / "debug").glob("*.yaml")}
    cfg = make_cfg(f"debug={option}")
    assert problems(cfg) == []


def test_fdr_is_one_epoch_on_one_batch_of_each_split(make_cfg, tmp_path):
    cfg = make_cfg(*DATA, "debug=fdr")
    assert split_sizes(cfg) == (256, 60, 200)  # one batch of 256; val and test are smaller than one
    run(cfg, tmp_path)
    assert len(pd.read_csv(tmp_path / "history.csv")) == 1
    assert read_metrics(tmp_path)["status"] == "ok"


def test_overfit_reaches_full_train_accuracy_on_a_few_batches(make_cfg, tmp_path):
    cfg = make_cfg(*DATA, "data.noise=2.0", "debug=overfit")  # noisy: the classes barely generalise
    assert split_sizes(cfg)[0] == 64 and cfg.batch_size == 16 and cfg.patience is None
    run(cfg, tmp_path)
    history = pd.read_csv(tmp_path / "history.csv")
    assert len(history) == 50
    assert history["train_acc"].iloc[-1] == 1.0
    assert history["val_acc"].iloc[-1] < 0.9  # memorised, not learned: the check is about the training path


def test_limit_keeps_a_tenth_of_each_split(make_cfg):
    cfg = make_cfg(*DATA, "debug=limit")
    assert cfg.epochs == 3 and cfg.data.limit == 0.1
    assert split_sizes(cfg) == (54, 6, 20)  # of 540, 60, 200
    a, b = (load_splits(make_cfg(*DATA, "debug=limit", f"data.split_seed={s}").data, torch.device("cpu"))
            for s in (0, 1))
    assert not torch.equal(a.train_x, b.train_x)  # a random part, fixed by split_seed


def test_limit_applies_to_a_users_dataset_too(make_cfg, monkeypatch):
    monkeypatch.syspath_prepend(str(REPO))
    cfg = make_cfg(f"hydra.searchpath=[file://{REPO / 'examples' / 'conf'}]", "data=spirals", "debug=limit")
    assert split_sizes(cfg) == (270, 30, 100)


def test_profile_writes_the_operator_table_of_one_epoch(make_cfg, tmp_path):
    run(make_cfg(*DATA, "debug=profile"), tmp_path)
    table = (tmp_path / "profile.txt").read_text()
    assert "Self CPU" in table and "aten::addmm" in table  # the Linear layers' matrix products
    assert len(pd.read_csv(tmp_path / "history.csv")) == 1


def test_debug_runs_go_to_their_own_dir(make_cfg):
    cfg = compose_train("debug=fdr", hydra_config=True)
    assert cfg.hydra.run.dir.startswith("outputs/debug/")
