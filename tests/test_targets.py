"""Bring your own: optimizers, models and datasets as `_target_` config nodes, and their bad input."""
import textwrap

import pandas as pd
import pytest
import torch

from conftest import TINY
from sweeplab.config import problems
from sweeplab.errors import ConfigError
from sweeplab.jobfiles import read_metrics
from sweeplab.task import run


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
    return package


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
         "optimizer.momentun: not an argument of torch.optim.NAdam (it takes: betas, capturable, decoupled_weight_decay"),
    ],
)
def test_bad_optimizer_target_is_one_line_before_any_data(make_cfg, tmp_path, overrides, message):
    # data.root points nowhere: the check must come before any data is looked for
    cfg = make_cfg("optimizer=nadam", *overrides, f"data.root={tmp_path / 'none'}", "data.system_root=null",
                   "data.download=false")
    with pytest.raises(ConfigError) as info:
        run(cfg, tmp_path / "job")
    assert message in str(info.value) and "\n" not in str(info.value)
