"""Divergence is caught where it happens, on both engines: a loss that is not finite, or a mean train
loss above ``diverge_above``, ends the run ``diverged`` at that epoch; its weights are never the best
state nor checkpointed, and numbers computed from them are not reported as results."""
import pandas as pd
import pytest
import torch
from torch import nn
from torch.nn import functional as F

import conftest
import sweeplab.job.task
from conftest import TINY
from sweeplab.errors import ConfigError
from sweeplab.job.task import run
from sweeplab.jobfiles import read_metrics
from sweeplab.training.data import Splits
from sweeplab.training.trainer import Callback, fit

FROM_NAN_WEIGHTS = ("val_acc", "val_loss", "test_acc", "test_loss", "train_acc")


class PoisonAfter(Callback):
    """Sets every weight to nan at the end of epoch ``epoch``: the next epoch's losses are nan."""

    def __init__(self, model: nn.Module, epoch: int):
        self.model, self.epoch = model, epoch

    def on_epoch_end(self, record) -> None:
        if record.epoch == self.epoch:
            with torch.no_grad():
                for p in self.model.parameters():
                    p.fill_(float("nan"))


def test_the_best_state_is_the_best_epoch_before_the_divergence():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(200, 20, generator=g), torch.randint(0, 3, (200,), generator=g)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(20, 16), nn.ReLU(), nn.Linear(16, 3))
    result = fit(model, torch.optim.SGD(model.parameters(), lr=0.1), F.cross_entropy, Splits(x, y, x, y, x, y),
                 epochs=6, batch_size=32, drop_last=False, seed=0, eval_batch_size=64,
                 callbacks=[PoisonAfter(model, 2)])
    assert (result.status, len(result.history)) == ("diverged", 3)
    assert result.reason == "train loss became nan in epoch 3"
    assert result.best_epoch in (1, 2) and result.best_val_acc == max(r.val_acc for r in result.history[:2])
    assert all(torch.isfinite(t).all() for t in result.best_state.values())
    assert result.final_state is None


@pytest.mark.parametrize("launcher", ["basic", "fused"])
def test_an_exploding_loss_ends_the_run_diverged_and_nothing_holds_its_weights(tmp_path, launcher):
    overrides = [*TINY, "epochs=3", "model.width=16", "lr=0.05,1000", "checkpoint=true", f"hydra/launcher={launcher}"]
    conftest.multirun(sweeplab.job.task.main, tmp_path, *overrides)
    ok, diverged = read_metrics(tmp_path / "0"), read_metrics(tmp_path / "1")
    assert ok["status"] == "ok"
    assert diverged["status"] == "diverged" and diverged["epochs_completed"] == 1
    assert diverged["reason"].startswith("train loss ")
    assert diverged["reason"].endswith("in epoch 1 is above diverge_above=1000")
    # epoch 1 diverged: there is no best epoch and nothing computed from its weights is a result
    assert [diverged[key] for key in ("best_val_acc", "test_acc_at_best_val", *FROM_NAN_WEIGHTS)] == [None] * 7
    assert diverged["train_loss"] > 1000
    state = torch.load(tmp_path / "1" / "checkpoint.pt", weights_only=True)
    assert state["finished"] and state["model"] is None and state["best_state"] is None
    assert "(fused, 2 members)" in (tmp_path / "1" / "train.log").read_text() or launcher == "basic"


def test_diverge_above_is_configurable_and_null_keeps_only_the_non_finite_check(make_cfg, tmp_path):
    run(make_cfg(*TINY, "diverge_above=1.0"), tmp_path / "low")
    metrics = read_metrics(tmp_path / "low")
    assert metrics["status"] == "diverged" and "above diverge_above=1" in metrics["reason"]
    run(make_cfg(*TINY, "diverge_above=null", "lr=1000"), tmp_path / "off")
    history = pd.read_csv(tmp_path / "off" / "history.csv")
    assert history["train_loss"].iloc[0] > 1000  # the default would have stopped it here
    metrics = read_metrics(tmp_path / "off")
    if history["train_loss"].notna().all():
        assert metrics["status"] == "ok"
    else:  # only a loss that is no longer finite ends it
        assert metrics["reason"].startswith("train loss became nan")


@pytest.mark.parametrize("override", ["lr=1e300", "optimizer=adam lr=1e39"])
def test_an_lr_that_float32_cannot_hold_is_a_config_error_in_one_line(make_cfg, tmp_path, override):
    with pytest.raises(ConfigError) as info:
        run(make_cfg(*TINY, *override.split()), tmp_path)
    message = str(info.value)
    assert "lr=" in message and "<= 3.403e+38 (float32)" in message and "\n" not in message
    assert read_metrics(tmp_path)["status"] == "failed"
