import math

import optuna
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from sweeplab.training.callbacks import EarlyStopping, OptunaPruning
from sweeplab.training.data import Splits
from sweeplab.training.trainer import Callback, EpochRecord, StopTraining, batches_per_epoch, evaluate, fit


@pytest.fixture
def splits():
    """Two Gaussian blobs per class, linearly separable enough to learn in a few epochs."""
    g = torch.Generator().manual_seed(0)
    centers = torch.randn(10, 784, generator=g)

    def sample(n):
        y = torch.randint(0, 10, (n,), generator=g)
        return centers[y] + 0.5 * torch.randn(n, 784, generator=g), y

    return Splits(*sample(500), *sample(100), *sample(100))


def make(seed=0, lr=0.1):
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(784, 32), nn.ReLU(), nn.Linear(32, 10))
    return net, torch.optim.SGD(net.parameters(), lr=lr)


def history_without_time(result):
    return [(r.epoch, r.train_loss, r.train_acc, r.val_loss, r.val_acc, r.lr) for r in result.history]


def test_it_learns(splits):
    result = fit(*make(), F.cross_entropy, splits, epochs=4, batch_size=50, drop_last=False, seed=0,
                 eval_batch_size=64)
    assert [r.epoch for r in result.history] == [1, 2, 3, 4]
    assert result.history[-1].train_loss < result.history[0].train_loss
    assert result.best_val_acc > 0.5 and result.status == "ok"
    assert result.best_val_acc == max(r.val_acc for r in result.history)


def test_same_seed_same_history_on_cpu(splits):
    kwargs = dict(epochs=3, batch_size=32, drop_last=False, seed=7, eval_batch_size=64)
    first = fit(*make(seed=7), F.cross_entropy, splits, **kwargs)
    second = fit(*make(seed=7), F.cross_entropy, splits, **kwargs)
    other = fit(*make(seed=8), F.cross_entropy, splits, **{**kwargs, "seed": 8})
    assert history_without_time(first) == history_without_time(second)
    assert history_without_time(first) != history_without_time(other)


class CountBatches(Callback):
    def __init__(self):
        self.batches, self.started = 0, None

    def on_train_start(self, epochs, batches_per_epoch):
        self.started = (epochs, batches_per_epoch)

    def on_batch_end(self):
        self.batches += 1


@pytest.mark.parametrize("drop_last, expected", [(False, 11), (True, 10)])
def test_drop_last_controls_the_short_batch(splits, drop_last, expected):
    counter = CountBatches()
    fit(*make(), F.cross_entropy, splits, epochs=1, batch_size=48, drop_last=drop_last, seed=0,
        eval_batch_size=64, callbacks=[counter])
    assert counter.started == (1, expected) and counter.batches == expected
    assert batches_per_epoch(500, 48, drop_last) == expected


def test_batch_larger_than_data_with_drop_last_is_an_error(splits):
    with pytest.raises(ValueError, match="batch_size=1000 with drop_last leaves no batch of 500"):
        fit(*make(), F.cross_entropy, splits, epochs=1, batch_size=1000, drop_last=True, seed=0, eval_batch_size=64)


def test_a_loss_that_stops_being_finite_ends_training_as_diverged(splits):
    result = fit(*make(lr=1e6), F.cross_entropy, splits, epochs=10, batch_size=50, drop_last=False, seed=0,
                 eval_batch_size=64)
    assert result.status == "diverged"
    assert "train loss became" in result.reason
    assert len(result.history) < 10 and not math.isfinite(result.history[-1].train_loss)


class StopAt(Callback):
    def __init__(self, epoch, status="pruned"):
        self.epoch, self.status, self.seen = epoch, status, []

    def on_epoch_end(self, record: EpochRecord):
        self.seen.append(record.epoch)
        if record.epoch == self.epoch:
            raise StopTraining(self.status, "told to stop")


def test_a_callback_can_stop_training_with_a_status(splits):
    stopper = StopAt(2)
    result = fit(*make(), F.cross_entropy, splits, epochs=5, batch_size=50, drop_last=False, seed=0,
                 eval_batch_size=64, callbacks=[stopper])
    assert (result.status, result.reason, len(result.history)) == ("pruned", "told to stop", 2)
    assert stopper.seen == [1, 2]


def test_when_early_stopping_ends_training_the_pruning_callback_still_reports_that_epoch(splits):
    trial = optuna.create_study(direction="maximize").ask()
    later = StopAt(99)
    result = fit(*make(), F.cross_entropy, splits, epochs=5, batch_size=50, drop_last=False, seed=0,
                 eval_batch_size=64, callbacks=[StopAt(2, status="ok"), OptunaPruning(trial, "val_acc"), later])
    assert (result.status, len(result.history)) == ("ok", 2)  # the first callback to say stop decides
    assert trial.study.trials[0].intermediate_values == {
        1: result.history[0].val_acc, 2: result.history[1].val_acc}
    assert later.seen == [1, 2]


def test_early_stopping_counts_epochs_without_improvement():
    stopper = EarlyStopping(patience=2)
    for epoch, acc in enumerate([0.5, 0.6, 0.6], start=1):
        stopper.on_epoch_end(EpochRecord(epoch, 1.0, 0.5, 1.0, acc, 0.1, 0.0))
    with pytest.raises(StopTraining, match="no better val_acc for 2 epochs") as info:
        stopper.on_epoch_end(EpochRecord(4, 1.0, 0.5, 1.0, 0.55, 0.1, 0.0))
    assert info.value.status == "ok"


def test_best_state_is_a_copy_of_the_best_epochs_weights(splits):
    net, opt = make(lr=0.5)
    result = fit(net, opt, F.cross_entropy, splits, epochs=4, batch_size=50, drop_last=False, seed=0,
                 eval_batch_size=64)
    best, _ = make()
    best.load_state_dict(result.best_state)
    _, val_acc = evaluate(best, F.cross_entropy, splits.val_x, splits.val_y, 64)
    assert val_acc == result.best_val_acc == result.history[result.best_epoch - 1].val_acc
    with torch.no_grad():
        net[0].weight.add_(1.0)  # training goes on changing the live weights; the snapshot must not move
    assert not torch.equal(result.best_state["0.weight"], net[0].weight)
