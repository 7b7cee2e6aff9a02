"""The stacked step engine: K same-shape jobs' MLPs trained as one stacked model.

:class:`StackedEngine` is what ``sweeplab.training.trainer.fit_members`` drives for a fused group: every
member keeps its own initial weights, data order, optimizer hyperparameters (read from its own
run's ``torch.optim`` optimizer, whose param group its lr schedule steps), dropout random stream
(:func:`dropout_generator`), best state and checkpoints, all in the driver; here is only the stacked
forward, backward and update (``sweeplab.fused.stacked``) and each member's slice of them.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from sweeplab.fused.stacked import StackedMLP, StackedOptimizer
from sweeplab.training.optim import build_optimizer
from sweeplab.training.trainer import LossFn


class Hyperparameters:
    """A member's optimizer hyperparameters in torch.optim's form (one param group), for a member with
    no lr schedule to step and no checkpoint to save: building a process's first torch.optim optimizer
    imports ``torch._dynamo`` (1.4 s, measured), which a fused sweep need not pay."""

    def __init__(self, cfg: DictConfig):
        self.param_groups = [OmegaConf.to_container(cfg, resolve=True)]
        self.state: dict = {}


def member_optimizer(
    cfg: DictConfig, model: nn.Module, device: torch.device
) -> torch.optim.Optimizer | Hyperparameters:
    """What holds a fused member's hyperparameters: its own run's ``torch.optim`` optimizer (never
    stepped) when its schedule steps it or its checkpoint saves its state, else :class:`Hyperparameters`."""
    if cfg.scheduler is not None or cfg.checkpoint:
        return build_optimizer(cfg.optimizer, model.parameters(), device)
    return Hyperparameters(cfg.optimizer)


def dropout_generator(seed: int, device: torch.device) -> torch.Generator:
    """Where a fused member draws its dropout masks, made right after its model is built. On the CPU, a
    copy of torch's global RNG as it stands then: what its run alone draws its dropout from (nothing
    else draws from it after the model is built: the data order has its own generator), so the member
    draws its run's masks. On another device, a generator of its seed there: torch's fused dropout
    kernel (CUDA's ``native_dropout``) draws its own way, so the masks are the member's own but not its run's."""
    if device.type == "cpu":
        return torch.Generator().set_state(torch.get_rng_state())
    return torch.Generator(device).manual_seed(seed)


class StackedEngine:
    """``models`` (``sweeplab.training.model.mlp`` networks of one shape, their initial weights) as one
    :class:`StackedMLP`, trained by a :class:`StackedOptimizer` with each member's hyperparameters.
    ``optimizers``: each member's own ``torch.optim`` optimizer (:func:`member_optimizer`), never
    stepped: its param group holds the member's hyperparameters, and its ``state_dict`` is the form
    the member's checkpoint takes. ``generators``: each member's :func:`dropout_generator`."""

    def __init__(self, models: Sequence[nn.Sequential], optimizers: Sequence[torch.optim.Optimizer | Hyperparameters],
                 cfgs: Sequence[DictConfig], loss_fn: LossFn, generators: Sequence[torch.Generator]):
        if any(optimizer.state for optimizer in optimizers):
            raise ValueError("the stacked optimizer starts without state: a job that resumes from its "
                             "checkpoint runs alone")
        self.models, self.optimizers, self.loss_fn = list(models), list(optimizers), loss_fn
        self.generators = list(generators)
        self.stacked = StackedMLP(self.models, [cfg.model.dropout for cfg in cfgs], self.generators)
        self.optimizer = StackedOptimizer(self.stacked.parameters(), [cfg.optimizer for cfg in cfgs])
        self.active = list(range(len(self.models)))
        self.hyperparameters_changed()

    def train_epoch(self, x: torch.Tensor, y: torch.Tensor, orders: torch.Tensor, batch_size: int,
                    drop_last: bool, on_batch_end: Callable[[], None] | None) -> tuple[list[float], list[float]]:
        return train_one_epoch(self.stacked, self.optimizer, x, y, orders, batch_size=batch_size,
                               drop_last=drop_last, on_batch_end=on_batch_end)

    def evaluate(self, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> tuple[list[float], list[float]]:
        return evaluate(self.stacked, self.loss_fn, x, y, batch_size)

    def weights(self, k: int) -> dict[str, torch.Tensor]:
        return self.stacked.member_state(self.active.index(k))

    def optimizer_state(self, k: int) -> dict[str, Any]:
        by_name = self.optimizer.member_state(self.active.index(k), self.stacked)
        names = [name for name, _ in self.models[k].named_parameters()]
        state = {index: by_name[name] for index, name in enumerate(names) if name in by_name}
        return {"state": state, "param_groups": self.optimizers[k].state_dict()["param_groups"]}

    def rng_state(self, k: int) -> torch.Tensor:
        # on the CPU the member's dropout stream is its run's global RNG, which its run alone resumes
        # from; elsewhere that run draws from the device's RNG, and its checkpoint holds the CPU's
        generator = self.generators[k]
        return generator.get_state() if generator.device.type == "cpu" else torch.get_rng_state()

    def hyperparameters_changed(self) -> None:
        self.optimizer.set_hyperparameters([self.optimizers[k].param_groups[0] for k in self.active])

    def drop(self, members: Sequence[int]) -> None:
        kept = [i for i, k in enumerate(self.active) if k not in members]
        index = torch.tensor(kept, device=self.stacked.weights[0].device)
        self.stacked.keep(index)
        self.optimizer.keep(index, self.stacked.parameters())
        self.active = [self.active[i] for i in kept]


@torch.inference_mode()  # no autograd anywhere in the stacked step: torch skips its bookkeeping per op
def train_one_epoch(
    stacked: StackedMLP, optimizer: StackedOptimizer, x: torch.Tensor, y: torch.Tensor, orders: torch.Tensor,
    *, batch_size: int, drop_last: bool, on_batch_end: Callable[[], None] | None = None,
) -> tuple[list[float], list[float]]:
    """One pass for every member in its own order (row k of ``orders``, K x N, is member k's).
    Per-member mean loss and accuracy (the model's own loss: see ``StackedMLP.log_probs_and_grad``)."""
    stacked.training = True
    n_members, n = orders.shape
    end = n - n % batch_size if drop_last else n
    # what multiplies the gradient of each member's summed loss: 1 / batch, or for plain SGD, whose
    # step the backward pass takes, lr / batch (one per batch size: the last batch may be short)
    grad_scales = {size: (optimizer.lr if optimizer.plain_sgd else 1.0) / size
                   for size in {batch_size, end % batch_size or batch_size}}
    log_prob_sum = torch.zeros(n_members, 1, device=x.device)
    correct = torch.zeros(n_members, dtype=torch.long, device=x.device)
    for start in range(0, end, batch_size):
        # one gather of every member's rows: members that share a seed get the same rows, but
        # gathering them again costs less than copying them from one gather (measured, 2 threads)
        idx = orders[:, start : start + batch_size].flatten()
        xb = x.index_select(0, idx).view(n_members, -1, x.shape[1])
        yb = y.index_select(0, idx).view(n_members, -1)
        # forward, backward, update: each member's gradient is that of its own mean loss
        out = stacked(xb)
        log_probs, grad = stacked.log_probs_and_grad(out, yb, grad_scales[yb.shape[1]])
        if optimizer.plain_sgd:
            stacked.backward(grad, sgd_step=True)
        else:
            stacked.backward(grad)
            optimizer.step()
        # running sums stay on the device: no host sync per batch
        log_prob_sum += log_probs.sum(dim=1)
        correct += (out.argmax(dim=2) == yb).sum(dim=1)
        if on_batch_end is not None:
            on_batch_end()
    return (-log_prob_sum.double().squeeze(1) / end).tolist(), (correct.double() / end).tolist()


@torch.no_grad()
def evaluate(
    stacked: StackedMLP, loss_fn: LossFn, x: torch.Tensor, y: torch.Tensor, batch_size: int
) -> tuple[list[float], list[float]]:
    """Per-member mean loss and accuracy on (x, y), every member seeing the same batches."""
    stacked.training = False
    loss_sum, correct = 0.0, 0
    for start in range(0, len(y), batch_size):
        out = stacked(x[start : start + batch_size])
        yb = y[start : start + batch_size].expand(out.shape[0], -1)
        losses = loss_fn(out.flatten(0, 1), yb.flatten(), reduction="none").view(out.shape[0], -1)
        loss_sum = loss_sum + losses.sum(dim=1).double()
        correct = correct + (out.argmax(dim=2) == yb).sum(dim=1)
    return (loss_sum / len(y)).tolist(), (correct.double() / len(y)).tolist()
