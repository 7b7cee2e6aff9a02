"""K same-shape MLPs as one stacked model, and their optimizers with per-member hyperparameters.

Member k's Linear(in, out) is slice k of a (K, in, out) weight (its ``weight.T``) and a (K, 1, out)
bias, so one ``torch.baddbmm`` runs a layer for all members. The backward pass is written out rather
than left to autograd: at batch 32 autograd's bookkeeping (graph, gradient buffers, the loss's extra
ops) costs more than the small matmuls it wraps, and the ops here are the ones autograd would call
(``bmm`` for a Linear, aten's ``*_backward`` kernels for an activation), so the gradients agree with
autograd's (tests/fused/test_fused.py). A member's optimizer hyperparameters are (K, 1, 1) tensors that
broadcast over its slices; the update arithmetic is torch.optim's (SGD, Adam, AdamW, RMSprop), op for
op, so a member trains as its own run would up to float rounding. Each member draws its dropout masks
from its own generator with the ops ``nn.Dropout`` runs on the CPU, so there they are its own run's masks.
"""
from __future__ import annotations

import itertools
from typing import Any, Callable, Mapping, Sequence

import torch
from omegaconf import DictConfig
from torch import nn
from torch.nn import functional as F

# The built-in optimizers (their `name` and `_target_`) whose arithmetic the stacked optimizer does.
OPTIMIZERS = {"sgd": "torch.optim.SGD", "adam": "torch.optim.Adam", "adamw": "torch.optim.AdamW",
              "rmsprop": "torch.optim.RMSprop"}

aten = torch.ops.aten
# grad_input(module, grad_output, input, output) of each activation sweeplab.training.model.mlp builds: the
# kernels autograd runs for it.
ACTIVATION_BACKWARD: dict[type[nn.Module], Callable[..., torch.Tensor]] = {
    nn.ReLU: lambda m, g, x, y: aten.threshold_backward(g, y, 0),
    nn.LeakyReLU: lambda m, g, x, y: aten.leaky_relu_backward(g, x, m.negative_slope, False),
    nn.Sigmoid: lambda m, g, x, y: aten.sigmoid_backward(g, y),
    nn.Tanh: lambda m, g, x, y: aten.tanh_backward(g, y),
    nn.GELU: lambda m, g, x, y: aten.gelu_backward(g, x, approximate=m.approximate),
    nn.ELU: lambda m, g, x, y: aten.elu_backward(g, m.alpha, 1, 1, False, x),
    nn.SiLU: lambda m, g, x, y: aten.silu_backward(g, x),
}


class StackedMLP:
    """K ``sweeplab.training.model.mlp`` networks of one shape, from their own initial weights: forward, and in
    training the backward pass that fills each weight's and bias's ``.grad`` (or takes plain SGD's step).
    ``dropout``: each member's rate; ``generators``: where each member draws its masks (needed only when
    the networks have dropout layers)."""

    def __init__(self, models: Sequence[nn.Sequential], dropout: Sequence[float],
                 generators: Sequence[torch.Generator] = ()):
        # ("linear", index) | ("act", module) | ("dropout", None) | ("log_softmax", None)
        self.layers: list[tuple[str, object]] = []
        self.names: list[tuple[str, str | None]] = []  # state_dict keys of each Linear's weight and bias
        self.weights: list[torch.Tensor] = []
        self.biases: list[torch.Tensor | None] = []
        for position, layer in enumerate(models[0]):
            if isinstance(layer, nn.Linear):
                members = [model[position] for model in models]
                self.layers.append(("linear", len(self.weights)))
                self.weights.append(torch.stack([m.weight.detach().T for m in members]).contiguous())
                has_bias = layer.bias is not None
                self.biases.append(torch.stack([m.bias.detach()[None] for m in members]) if has_bias else None)
                self.names.append((f"{position}.weight", f"{position}.bias" if has_bias else None))
            elif isinstance(layer, nn.Dropout):
                self.layers.append(("dropout", None))
            elif isinstance(layer, nn.LogSoftmax):
                self.layers.append(("log_softmax", None))
            else:  # an elementwise activation: the same module works on (K, B, H)
                if type(layer) not in ACTIVATION_BACKWARD:
                    raise ValueError(f"the stacked model has no backward pass for {type(layer).__name__}")
                self.layers.append(("act", layer))
        if ("dropout", None) in self.layers and len(generators) != len(models):
            raise ValueError(f"{len(models)} members with dropout need as many generators, got {len(generators)}")
        self.dropout, self.generators = list(dropout), list(generators)
        self.training = True
        self.saved: list[object] = []  # per layer, what its backward needs (training forward only)

    def parameters(self) -> list[torch.Tensor]:
        return self.weights + [b for b in self.biases if b is not None]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """(K, B, in) per-member inputs, or (B, in) shared by all members -> (K, B, classes)."""
        self.saved = []
        for kind, what in self.layers:
            x_in = x
            if kind == "linear":
                weight, bias = self.weights[what], self.biases[what]
                if x.dim() == 2:  # shared input: matmul folds it into one plain GEMM
                    x = torch.matmul(x, weight) if bias is None else torch.matmul(x, weight) + bias
                else:
                    x = torch.bmm(x, weight) if bias is None else torch.baddbmm(bias, x, weight)
                saved = x_in
            elif kind == "act":
                x = what(x)
                saved = (x_in, x)
            elif kind == "dropout" and self.training:
                saved = self.dropout_masks(x)
                x = x * saved
            elif kind == "log_softmax":
                x = saved = log_softmax(x)
            if self.training:
                self.saved.append(saved)
        return x

    def dropout_masks(self, x: torch.Tensor) -> torch.Tensor:
        """Each member's dropout mask for ``x`` (K, B, H), scaled by 1 / (1 - p): drawn, member by
        member from its own generator, as ``nn.Dropout`` draws its noise on the CPU (ATen's
        ``_dropout``: ``empty_like(x).bernoulli_(1 - p)``, then ``div_(1 - p)``), so a member whose
        generator holds its run's RNG state draws its run's masks."""
        masks = torch.empty(x.shape, dtype=x.dtype, device=x.device)  # contiguous: each mask as dense as its run's
        for mask, p, generator in zip(masks, self.dropout, self.generators, strict=True):
            mask.bernoulli_(1 - p, generator=generator).div_(1 - p)
        return masks

    def backward(self, grad: torch.Tensor, sgd_step: bool = False) -> None:
        """Backpropagate ``grad``, the gradient w.r.t. the last training forward's output (K, B,
        classes): set every weight's and bias's ``.grad``, or, with ``sgd_step``, take plain SGD's
        step ``w -= grad`` in place inside the gradient's own matmul (no gradient tensor and no
        separate pass over the weights: at batch 32 that pass costs half a matmul). For that step,
        ``grad`` comes already scaled by each member's lr (:meth:`log_probs_and_grad`): backpropagation
        is linear, so every layer's gradient is then lr times its own."""
        for position in reversed(range(len(self.layers))):
            kind, what = self.layers[position]
            saved = self.saved[position]
            if kind == "linear":
                weight, bias = self.weights[what], self.biases[what]
                grad_in = None if position == 0 else torch.bmm(grad, weight.transpose(1, 2))  # before the step
                x_t = saved.transpose(-1, -2).expand(len(weight), -1, -1)  # (K, in, B), also for a shared input
                if sgd_step:
                    weight.baddbmm_(x_t, grad, alpha=-1)
                    if bias is not None:
                        bias.sub_(grad.sum(dim=1, keepdim=True))
                else:
                    weight.grad = torch.bmm(x_t, grad)
                    if bias is not None:
                        bias.grad = grad.sum(dim=1, keepdim=True)
                if grad_in is None:
                    break  # the data needs no gradient
                grad = grad_in
            elif kind == "act":
                grad = ACTIVATION_BACKWARD[type(what)](what, grad, *saved)
            elif kind == "dropout":
                grad = grad * saved
            elif kind == "log_softmax":
                grad = grad - saved.exp() * grad.sum(dim=-1, keepdim=True)
        self.saved = []

    def log_probs_and_grad(
        self, out: torch.Tensor, y: torch.Tensor, grad_scale: torch.Tensor | float
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Each sample's log-probability of its class (K x B x 1: minus its loss) under the model's
        own loss (``sweeplab.training.model.loss_function``: NLL on log-probabilities when the model ends in
        log_softmax, cross-entropy on logits otherwise), and ``grad_scale`` (K x 1 x 1, or a number)
        times the gradient of each member's summed loss w.r.t. ``out`` (K x B x classes): with
        1 / B, the gradient of each member's mean loss."""
        ends_in_log_softmax = self.layers[-1][0] == "log_softmax"
        log_probs = out if ends_in_log_softmax else log_softmax(out)
        target = y.unsqueeze(2)
        minus_one = torch.full_like(target, -1.0, dtype=out.dtype)
        if ends_in_log_softmax:  # d(NLL)/d(log-probs): -1 at each sample's class
            grad = torch.zeros_like(out).scatter_(2, target, minus_one)
        else:  # d(cross-entropy)/d(logits): softmax - one-hot
            grad = log_probs.exp().scatter_add_(2, target, minus_one)
        return log_probs.gather(2, target), grad.mul_(grad_scale)

    def member_state(self, k: int) -> dict[str, torch.Tensor]:
        """Member k's weights as the ``state_dict`` of its own ``nn.Sequential`` (copies)."""
        return self.member_slices(k, self.parameters())

    def member_slices(self, k: int, stacked: Sequence[torch.Tensor]) -> dict[str, torch.Tensor]:
        """Member k's slices of ``stacked``, one tensor per parameter in :meth:`parameters`'s order
        (the weights themselves, or an optimizer's per-parameter state), as copies named and shaped
        as its own ``nn.Sequential``'s parameters."""
        names = [weight for weight, _ in self.names] + [bias for _, bias in self.names if bias is not None]
        n_weights = len(self.weights)
        # contiguous copies, as the member's own tensors are: torch's fused Adam misreads transposed state
        slices = {name: (tensor[k].detach().T if i < n_weights else tensor[k, 0].detach())
                  .clone(memory_format=torch.contiguous_format)
                  for i, (name, tensor) in enumerate(zip(names, stacked, strict=True))}
        return {name: slices[name] for pair in self.names for name in pair if name is not None}  # layer order

    def keep(self, index: torch.Tensor) -> None:
        """Keep only the members at ``index`` (the others stopped)."""
        self.weights = [w[index] for w in self.weights]
        self.biases = [None if b is None else b[index] for b in self.biases]
        kept = index.tolist()
        self.dropout = [self.dropout[i] for i in kept]
        self.generators = [self.generators[i] for i in kept] if self.generators else []


def log_softmax(x: torch.Tensor) -> torch.Tensor:
    """``F.log_softmax(x, dim=-1)`` of a (K, B, classes) stack, computed over dim 1 of its transpose:
    with ten classes torch's CPU kernel for the last dim is about 6x slower than the one that
    vectorises across the other dims (measured: 38 vs 6.5 us at 9 x 32 x 10)."""
    return F.log_softmax(x.transpose(1, 2), dim=1).transpose(1, 2)


def member_tensor(values: Sequence[float], device: torch.device) -> torch.Tensor:
    """One value per member as a (K, 1, 1) tensor that broadcasts over each member's slices."""
    return torch.tensor([float(v) for v in values], dtype=torch.float32, device=device).view(-1, 1, 1)


class StackedOptimizer:
    """torch.optim's SGD (momentum, nesterov, weight decay), Adam, AdamW and RMSprop (momentum,
    centered, weight decay), per member.

    ``configs`` are the members' ``optimizer`` groups: one ``name`` (and ``nesterov``, ``centered``),
    any per-member lr, momentum, alpha, betas, eps and weight decay.
    """

    def __init__(self, params: list[torch.Tensor], configs: Sequence[DictConfig]):
        self.name = configs[0].name
        self.nesterov = self.name == "sgd" and bool(configs[0].nesterov)
        self.centered = self.name == "rmsprop" and bool(configs[0].get("centered", False))
        self.params = params
        self.state: list[dict[str, torch.Tensor]] = [{} for _ in params]
        self.steps = 0
        self.set_hyperparameters(configs)

    def set_hyperparameters(self, groups: Sequence[Mapping[str, Any]]) -> None:
        """Each member's lr, weight decay, momentum, alpha, betas and eps (those its optimizer has),
        under torch.optim's names: its ``optimizer`` config, or the param group of its own run's
        optimizer after its lr schedule stepped (a schedule may change any of them)."""
        device = self.params[0].device
        self.lr = member_tensor([g["lr"] for g in groups], device)
        self.weight_decay = member_tensor([g["weight_decay"] for g in groups], device)
        self.decays = any(g["weight_decay"] != 0 for g in groups)
        if self.name in ("sgd", "rmsprop"):
            self.momentum = member_tensor([g["momentum"] for g in groups], device)
            self.uses_momentum = any(g["momentum"] != 0 for g in groups)
        if self.name == "rmsprop":
            self.alpha = member_tensor([g["alpha"] for g in groups], device)
        if self.name in ("adam", "adamw"):
            self.beta1 = member_tensor([g["betas"][0] for g in groups], device)
            self.beta2 = member_tensor([g["betas"][1] for g in groups], device)
        if self.name != "sgd":
            self.eps = member_tensor([g["eps"] for g in groups], device)
        # plain SGD (no momentum, no weight decay): the model can take the step in its backward pass
        self.plain_sgd = self.name == "sgd" and not self.uses_momentum and not self.decays
        self._derive()

    def _derive(self) -> None:
        """Per-member constants of the update, computed once rather than in every step."""
        self.neg_lr = -self.lr
        if self.name == "rmsprop":
            self.one_minus_alpha = 1 - self.alpha
        if self.name in ("adam", "adamw"):
            self.one_minus_beta1, self.one_minus_beta2 = 1 - self.beta1, 1 - self.beta2
            self.decoupled_decay = 1 - self.lr * self.weight_decay  # AdamW

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        self.steps += 1
        if self.name in ("sgd", "rmsprop"):
            update = self._sgd if self.name == "sgd" else self._rmsprop
            for p, state in zip(self.params, self.state, strict=True):
                update(p, p.grad, state)
            return
        # Adam's bias corrections, once per step for all parameters
        bias_correction2_sqrt = (1 - self.beta2 ** self.steps).sqrt()
        neg_step_size = -self.lr / (1 - self.beta1 ** self.steps)
        for p, state in zip(self.params, self.state, strict=True):
            self._adam(p, p.grad, state, bias_correction2_sqrt, neg_step_size)

    def _sgd(self, p: torch.Tensor, grad: torch.Tensor, state: dict[str, torch.Tensor]) -> None:
        # torch.optim.SGD (dampening 0); a member with momentum 0 gets buf = grad, i.e. plain SGD.
        # In place on the fresh gradient: every op here is a pass over the whole stack.
        d_p = grad.addcmul_(self.weight_decay, p) if self.decays else grad
        if self.uses_momentum:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = d_p.clone()
            else:
                buf.mul_(self.momentum).add_(d_p)
            d_p = d_p.addcmul_(self.momentum, buf) if self.nesterov else buf
        p.addcmul_(self.neg_lr, d_p)

    def _rmsprop(self, p: torch.Tensor, grad: torch.Tensor, state: dict[str, torch.Tensor]) -> None:
        # torch.optim.RMSprop: L2 decay into the gradient; a member with momentum 0 gets buf =
        # grad / avg, i.e. torch's step without a buffer
        if self.decays:
            grad = grad.addcmul_(self.weight_decay, p)
        if not state:
            state["square_avg"] = torch.zeros_like(p)
            if self.uses_momentum:
                state["momentum_buffer"] = torch.zeros_like(p)
            if self.centered:
                state["grad_avg"] = torch.zeros_like(p)
        square_avg = state["square_avg"]
        square_avg.mul_(self.alpha).addcmul_(grad * self.one_minus_alpha, grad)
        if self.centered:
            grad_avg = state["grad_avg"]
            grad_avg.lerp_(grad, self.one_minus_alpha.expand_as(p))
            avg = square_avg.addcmul(grad_avg, grad_avg, value=-1).sqrt_()
        else:
            avg = square_avg.sqrt()
        avg.add_(self.eps)
        if self.uses_momentum:
            buf = state["momentum_buffer"]
            buf.mul_(self.momentum).addcdiv_(grad, avg)
            p.addcmul_(self.neg_lr, buf)
        else:
            p.addcdiv_(grad, avg.div_(self.neg_lr))  # p - lr * grad / avg

    def _adam(
        self, p: torch.Tensor, grad: torch.Tensor, state: dict[str, torch.Tensor],
        bias_correction2_sqrt: torch.Tensor, neg_step_size: torch.Tensor,
    ) -> None:
        # torch.optim.Adam / AdamW (amsgrad off): L2 decay into the gradient, or decoupled decay
        if self.decays and self.name == "adam":
            grad = grad.addcmul_(self.weight_decay, p)
        elif self.decays:
            p.mul_(self.decoupled_decay)
        if not state:
            state["exp_avg"], state["exp_avg_sq"] = torch.zeros_like(p), torch.zeros_like(p)
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        exp_avg.lerp_(grad, self.one_minus_beta1.expand_as(p))
        exp_avg_sq.mul_(self.beta2).addcmul_(grad * self.one_minus_beta2, grad)
        denom = exp_avg_sq.sqrt().div_(bias_correction2_sqrt).add_(self.eps)
        p.addcdiv_(exp_avg, denom.div_(neg_step_size))  # p - step_size * exp_avg / denom

    def member_state(self, k: int, stacked: StackedMLP) -> dict[str, dict[str, torch.Tensor]]:
        """Member k's state as the torch.optim optimizer of its own run holds it, per parameter name:
        SGD's ``momentum_buffer`` (none without momentum), Adam's ``exp_avg``, ``exp_avg_sq`` and ``step``,
        RMSprop's ``square_avg``, ``step``, ``momentum_buffer`` (with momentum) and ``grad_avg`` (centered)."""
        keys = [key for key in self.state[0] if key != "momentum_buffer" or float(self.momentum[k]) != 0]
        per_key = {key: stacked.member_slices(k, [state[key] for state in self.state]) for key in keys}
        if self.name != "sgd":  # one tensor per parameter: torch.optim counts each one's steps in place
            per_key["step"] = {name: torch.tensor(float(self.steps)) for name in per_key[keys[0]]}
        names = next(iter(per_key.values()), {}).keys()
        return {name: {key: slices[name] for key, slices in per_key.items()} for name in names}

    def keep(self, index: torch.Tensor, params: list[torch.Tensor]) -> None:
        """Keep only the members at ``index``, now stacked in ``params``."""
        self.params = params
        for name in ("lr", "weight_decay", "momentum", "alpha", "beta1", "beta2", "eps"):
            if hasattr(self, name):
                setattr(self, name, getattr(self, name)[index])
        self.state = [{key: value[index] for key, value in state.items()} for state in self.state]
        self._derive()


def parameter_count(sizes: Sequence[int], bias: bool) -> int:
    """Parameters of one member with layer sizes ``[in, hidden..., out]``."""
    return sum(a * b + (b if bias else 0) for a, b in itertools.pairwise(sizes))


def bytes_per_member(sizes: Sequence[int], bias: bool, optimizer: str, batch_size: int, eval_batch_size: int) -> int:
    """An upper estimate of one member's share of a stacked model's memory, float32.

    Weights, gradients and optimizer state (SGD momentum: 1 copy, Adam: 2, RMSprop: up to 3), a
    training batch's input gather and activations kept for backward (about 3 floats per unit: output,
    activation, its gradient), and an evaluation batch's activations.
    """
    params = parameter_count(sizes, bias)
    copies = 2 + {"sgd": 1, "rmsprop": 3}.get(optimizer, 2)
    units = sum(sizes[1:])
    floats = params * copies + batch_size * (sizes[0] + 3 * units) + eval_batch_size * units
    return 4 * floats

