"""Learning-rate schedules and gradient clipping: the lr each epoch records, and what clipping bounds."""
import math

import pandas as pd
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from conftest import CONF, TINY
from sweeplab.config import problems
from sweeplab.errors import ConfigError
from sweeplab.job.task import run
from sweeplab.jobfiles import read_metrics
from sweeplab.training.data import Splits
from sweeplab.training.trainer import fit, optimizer_update

# TINY trains on 540 samples in batches of 64: 9 steps per epoch
STEPS = 9


def lrs(make_cfg, tmp_path, *overrides):
    run(make_cfg(*TINY, "epochs=4", "lr=0.1", *overrides), tmp_path)
    return pd.read_csv(tmp_path / "history.csv")["lr"].tolist()


def test_every_scheduler_option_composes_and_validates(make_cfg):
    options = sorted(p.stem for p in (CONF / "scheduler").glob("*.yaml"))
    assert options == ["cosine", "none", "onecycle", "step", "warmup_cosine"]
    for option in options:
        assert problems(make_cfg(f"scheduler={option}")) == [], option
    assert make_cfg().scheduler is None


def test_none_keeps_the_lr(make_cfg, tmp_path):
    assert lrs(make_cfg, tmp_path) == [0.1] * 4


def test_step_multiplies_by_gamma_every_step_size_epochs(make_cfg, tmp_path):
    got = lrs(make_cfg, tmp_path, "scheduler=step", "scheduler.step_size=2", "scheduler.gamma=0.5")
    assert got == pytest.approx([0.1, 0.1, 0.05, 0.05])


def test_cosine_follows_the_epoch_cosine_from_the_epochs_start(make_cfg, tmp_path):
    want = [0.05 * (1 + math.cos(math.pi * e / 4)) for e in range(4)]
    assert lrs(make_cfg, tmp_path, "scheduler=cosine") == pytest.approx(want)


def test_onecycle_steps_per_batch_from_max_lr_over_div_factor(make_cfg, tmp_path):
    got = lrs(make_cfg, tmp_path, "scheduler=onecycle")
    assert got[0] == pytest.approx(0.1 / 25)
    assert max(got) <= 0.1 and got[1] > got[0] and got[3] < got[1]


def test_warmup_cosine_warms_up_per_batch_then_decays(make_cfg, tmp_path):
    got = lrs(make_cfg, tmp_path / "one", "scheduler=warmup_cosine")
    # epoch 1 starts at lr / steps, epoch 2 at the peak, then a cosine over the 3 remaining epochs
    cosine = [0.05 * (1 + math.cos(math.pi / 3)), 0.05 * (1 + math.cos(2 * math.pi / 3))]
    assert got == pytest.approx([0.1 / STEPS, 0.1, *cosine])
    no_warmup = lrs(make_cfg, tmp_path / "zero", "scheduler=warmup_cosine", "scheduler.warmup_epochs=0")
    assert no_warmup[0] == pytest.approx(0.1)


def test_scheduler_values_are_sweepable_keys(make_cfg):
    for warmup in (0, 1):
        cfg = make_cfg("scheduler=warmup_cosine", f"scheduler.warmup_epochs={warmup}")
        assert cfg.scheduler.warmup_epochs == warmup
    assert make_cfg("scheduler=onecycle", "lr=0.3").scheduler.max_lr == 0.3


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["scheduler=step", "+scheduler.step_sizee=3"],
         "scheduler.step_sizee: not an argument of torch.optim.lr_scheduler.StepLR "
         "(it takes: gamma, last_epoch, step_size)"),
        (["scheduler=cosine", "scheduler._target_=torch.optim.lr_scheduler.Cosine"],
         "scheduler._target_='torch.optim.lr_scheduler.Cosine': cannot import it "
         "(torch.optim.lr_scheduler has no 'Cosine')"),
        (["scheduler=step", "~scheduler.step_size"], "scheduler: torch.optim.lr_scheduler.StepLR needs step_size"),
        (["scheduler=step", "scheduler.interval=batch"], "scheduler.interval='batch': must be one of epoch, step"),
        (["grad_clip=0"], "grad_clip=0.0: must be a number > 0"),
    ],
)
def test_bad_scheduler_config_fails_before_training_in_one_line(make_cfg, tmp_path, overrides, message):
    with pytest.raises(ConfigError) as info:
        run(make_cfg(*TINY, *overrides), tmp_path)
    assert message in str(info.value) and "\n" not in str(info.value)
    assert read_metrics(tmp_path)["status"] == "failed"
    assert not (tmp_path / "history.csv").exists()


def test_without_clipping_or_batch_schedule_the_update_is_the_bare_step():
    optimizer = torch.optim.SGD(nn.Linear(3, 2).parameters(), lr=0.1)
    assert optimizer_update(optimizer, None, None) == optimizer.step
    assert optimizer_update(optimizer, 1.0, None) != optimizer.step


def one_step_change(grad_clip):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(784, 32), nn.ReLU(), nn.Linear(32, 10))
    before = torch.cat([p.detach().flatten().clone() for p in net.parameters()])
    x, y = torch.randn(64, 784) * 10, torch.randint(0, 10, (64,))
    fit(net, torch.optim.SGD(net.parameters(), lr=1.0), F.cross_entropy, Splits(x, y, x, y, x, y),
        epochs=1, batch_size=64, drop_last=False, seed=0, eval_batch_size=64, grad_clip=grad_clip)
    return (torch.cat([p.detach().flatten() for p in net.parameters()]) - before).norm().item()


def test_grad_clip_bounds_the_gradient_norm_of_each_step():
    assert one_step_change(None) > 0.5
    assert one_step_change(0.01) == pytest.approx(0.01, rel=1e-3)  # SGD with lr 1: the step is the clipped gradient
