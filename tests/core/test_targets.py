"""Bring your own: optimizers, models and datasets as `_target_` config nodes, and their bad input."""
import sys
import textwrap

import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf

import sweeplab.job.task
from conftest import FASHION_MNIST, REPO, TINY, missing_environment, multirun, write_idx_dataset
from sweeplab.config import problems
from sweeplab.errors import ConfigError, DataError
from sweeplab.job.task import run
from sweeplab.jobfiles import read_metrics
from sweeplab.report.build import write_report
from sweeplab.training.data import load_splits


@pytest.fixture
def user_package(tmp_path, monkeypatch):
    """A user's own package `mylab` on sys.path, as it would be after `pip install -e .` of their code."""
    package = tmp_path / "pkg" / "mylab"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "optim.py").write_text(textwrap.dedent('''
        import torch

        class SignSGD(torch.optim.Optimizer):
            """Steps by lr times the sign of the gradient."""

            def __init__(self, params, lr, scale=1.0):
                super().__init__(params, dict(lr=lr, scale=scale))

            @torch.no_grad()
            def step(self):
                for group in self.param_groups:
                    for p in group["params"]:
                        if p.grad is not None:
                            p.add_(p.grad.sign(), alpha=-group["lr"] * group["scale"])
    '''))
    monkeypatch.syspath_prepend(str(tmp_path / "pkg"))
    for name in [name for name in sys.modules if name.split(".")[0] == "mylab"]:
        monkeypatch.delitem(sys.modules, name)  # each test's own mylab, not an earlier test's
    yield package
    for name in [name for name in sys.modules if name.split(".")[0] == "mylab"]:
        del sys.modules[name]


def test_nadam_from_yaml_alone_follows_the_top_level_lr(make_cfg, tmp_path):
    cfg = make_cfg(*TINY, "optimizer=nadam", "lr=0.002")
    assert problems(cfg) == []
    run(cfg, tmp_path)
    assert pd.read_csv(tmp_path / "history.csv")["lr"].tolist() == [0.002, 0.002]
    assert read_metrics(tmp_path)["status"] == "ok"


def test_a_users_optimizer_class_from_their_package(make_cfg, tmp_path, user_package):
    cfg = make_cfg(*TINY, "optimizer=nadam", "optimizer._target_=mylab.optim.SignSGD", "~optimizer.betas",
                   "~optimizer.weight_decay", "~optimizer.momentum_decay", "+optimizer.scale=0.5", "lr=0.01")
    assert problems(cfg) == []
    value = run(cfg, tmp_path)
    assert value > 0.5  # sign steps learn the synthetic classes too


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["optimizer._target_=torch.optim.Nadam"],
         "optimizer._target_='torch.optim.Nadam': cannot import it (torch.optim has no 'Nadam')"),
        (["optimizer._target_=mylab_missing.Opt"],
         "optimizer._target_='mylab_missing.Opt': cannot import it (no module named 'mylab_missing')"),
        (["+optimizer.momentun=0.9"],
         "optimizer.momentun: not an argument of torch.optim.NAdam "
         "(it takes: betas, capturable, decoupled_weight_decay"),
    ],
)
def test_bad_optimizer_target_is_one_line_before_any_data(make_cfg, tmp_path, overrides, message):
    # data.root points nowhere: the check must come before any data is looked for
    cfg = make_cfg("optimizer=nadam", *overrides, f"data.root={tmp_path / 'none'}", "data.system_root=null",
                   "data.download=false")
    with pytest.raises(ConfigError) as info:
        run(cfg, tmp_path / "job")
    assert message in str(info.value) and "\n" not in str(info.value)


# ---------------------------------------------------------------- models and datasets

EXAMPLES = REPO / "examples"


@pytest.fixture
def examples(monkeypatch):
    """examples/ importable (train.py's folder is on sys.path when it runs) and its conf/ searched."""
    monkeypatch.syspath_prepend(str(REPO))
    return f"hydra.searchpath=[file://{EXAMPLES / 'conf'}]"


def test_example_cnn_trains_on_fashion_mnist(make_cfg, tmp_path, examples):
    if not FASHION_MNIST.is_dir():
        missing_environment("needs Debian's dataset-fashion-mnist: `make data` installs it")
    cfg = make_cfg(examples, "model=cnn", "model.channels=4", "data.limit=0.02", "epochs=2", "batch_size=32",
                   "optimizer=adam", "lr=0.003")
    assert problems(cfg) == []
    value = run(cfg, tmp_path)
    metrics = read_metrics(tmp_path)
    assert metrics["status"] == "ok" and value > 0.4  # chance is 0.1
    assert metrics["params"] == (1 * 9 + 1) * 4 + (4 * 9 + 1) * 8 + (8 * 7 * 7 + 1) * 10


def test_example_spirals_dataset_with_the_builtin_mlp(make_cfg, tmp_path, examples):
    cfg = make_cfg(examples, "data=spirals", "data.n_train=600", "data.n_test=200", "model.width=32",
                   "model.depth=2", "optimizer=adam", "lr=0.02", "batch_size=32", "epochs=8")
    value = run(cfg, tmp_path)
    metrics = read_metrics(tmp_path)
    assert metrics["params"] == (2 * 32 + 32) + (32 * 32 + 32) + (32 * 3 + 3)  # 2 features in, 3 classes out
    assert value > 0.6  # chance is 1/3


def test_a_users_model_file_is_not_rejected_by_the_schema_but_its_arguments_are_checked(make_cfg, examples):
    assert make_cfg(examples, "model=cnn", "model.channels=8").model.channels == 8
    assert problems(make_cfg(examples, "model=cnn", "+model.chanels=8")) == [
        "model.chanels: not an argument of examples.cnn.small_cnn (it takes: channels, dropout)"
    ]


def test_torchvision_dataset_class_is_converted_once_to_tensors(tmp_path):
    write_idx_dataset(tmp_path / "FashionMNIST" / "raw", n_train=50, n_test=20)
    cfg = OmegaConf.create({"_target_": "sweeplab.training.data.torchvision_dataset", "dataset": {
        "_target_": "torchvision.datasets.FashionMNIST", "_partial_": True, "root": str(tmp_path), "download": False}})
    splits = load_splits(cfg, torch.device("cpu"))
    assert splits.input_shape == (1, 28, 28) and splits.n_classes == 10
    assert (len(splits.train_y), len(splits.val_y), len(splits.test_y)) == (45, 5, 20)
    idx = load_splits(OmegaConf.create({"_target_": "sweeplab.training.data.idx_images", "name": "fashion_mnist",
                                        "root": str(tmp_path / "FashionMNIST" / "raw"), "system_root": None,
                                        "download": False}), torch.device("cpu"))
    torch.testing.assert_close(splits.test_x.flatten(1), idx.test_x)  # ToTensor's x/255, as ours


@pytest.fixture
def user_data(user_package):
    """Data and model factories that go wrong in the ways a user's code does."""
    (user_package / "bad.py").write_text(textwrap.dedent('''
        import numpy as np
        import torch
        from torch import nn

        def pairs(n=40, features=5, low=0, high=3, label_dtype="int64", test_features=5):
            rng = np.random.default_rng(0)
            return ((rng.standard_normal((n, features)), rng.integers(low, high, n).astype(label_dtype)),
                    (rng.standard_normal((n, test_features)), rng.integers(0, 3, n)))

        def not_pairs():
            return {"train": 1}

        def not_a_module(input_shape, n_classes):
            return [nn.Linear(input_shape[0], n_classes)]

        def wrong_outputs(input_shape, n_classes):
            return nn.Linear(input_shape[0], n_classes + 1)

        def wrong_input(input_shape, n_classes):
            return nn.Linear(7, n_classes)
    '''))
    conf = user_package.parent / "conf"
    (conf / "data").mkdir(parents=True)
    (conf / "data" / "mine.yaml").write_text("_target_: mylab.bad.pairs\n")
    (conf / "model").mkdir()
    (conf / "model" / "mine.yaml").write_text("_target_: mylab.bad.not_a_module\n")
    return f"hydra.searchpath=[file://{conf}]"


@pytest.mark.parametrize(
    "overrides, error, message",
    [
        (["data._target_=mylab.bad.not_pairs"], DataError,
         "data._target_=mylab.bad.not_pairs: returned a dict; expected (train, test) or (train, val, test)"),
        (["+data.test_features=4"], DataError,
         "data._target_=mylab.bad.pairs: test x has samples of shape (4,), train (5,); "
         "expected the same shape in every split"),
        (["+data.low=-1"], DataError,
         "data._target_=mylab.bad.pairs: train labels span -1..2; expected 0..2 (data.n_classes=3)"),
        (["+data.n_classes=2"], DataError,
         "data._target_=mylab.bad.pairs: train labels span 0..2; expected 0..1 (data.n_classes=2)"),
        (["+data.label_dtype=float32"], DataError,
         "data._target_=mylab.bad.pairs: train labels are torch.float32; expected integer class indices"),
        (["model=mine", "model._target_=mylab.bad.not_a_module"], ConfigError,
         "model._target_=mylab.bad.not_a_module: returned list, expected a torch.nn.Module"),
        (["model=mine", "model._target_=mylab.bad.wrong_outputs"], ConfigError,
         "model._target_=mylab.bad.wrong_outputs: returns (2, 4) for inputs of shape (2, 5); expected (2, 3)"),
        (["model=mine", "model._target_=mylab.bad.wrong_input"], ConfigError,
         "model._target_=mylab.bad.wrong_input: fails on inputs of shape (2, 5) (RuntimeError: mat1 and mat2"),
        (["model=mine", "model._target_=mylab.nowhere.Net"], ConfigError,
         "model._target_='mylab.nowhere.Net': cannot import it (mylab has no 'nowhere')"),
    ],
)
def test_bad_data_or_model_from_a_target_is_one_line_before_training(make_cfg, tmp_path, user_data, overrides,
                                                                   error, message):
    cfg = make_cfg(user_data, "data=mine", "epochs=2", "batch_size=16", *overrides)
    with pytest.raises(error) as info:
        run(cfg, tmp_path)
    assert message in str(info.value) and "\n" not in str(info.value)
    assert read_metrics(tmp_path)["status"] == "failed"
    assert not (tmp_path / "history.csv").exists()


def test_a_users_model_sweeps_and_reports_like_the_builtin(tmp_path, examples):
    """train.py -m over a key of the example CNN (in-process), then the report of the sweep dir."""
    sweep = tmp_path / "sweep"
    multirun(sweeplab.job.task.main, sweep, examples, "model=cnn", "model.channels=2,4", *TINY[:-2], "epochs=1",
             "scheduler=cosine", "grad_clip=5")
    assert [read_metrics(sweep / job)["status"] for job in ("0", "1")] == ["ok", "ok"]
    summary = pd.read_csv(write_report([sweep], sweep).files[0])
    assert sorted(summary["model.channels"]) == [2, 4]
