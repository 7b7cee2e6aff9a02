"""Models from the ``model`` group: a ``_target_`` factory called with the data's input shape and
class count. The built-in one is :func:`mlp`: Linear -> activation (-> dropout) per hidden layer,
then a Linear to the classes.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from omegaconf import DictConfig
from torch import nn
from torch.nn import functional as F

from sweeplab import targets
from sweeplab.errors import ConfigError

ACTIVATION_LAYERS = {
    "relu": nn.ReLU,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "gelu": nn.GELU,
    "elu": nn.ELU,
    "silu": nn.SiLU,
}


def activation_layer(name: str, negative_slope: float) -> nn.Module:
    if name == "leaky_relu":
        return nn.LeakyReLU(negative_slope)
    return ACTIVATION_LAYERS[name]()


def instantiate_model(cfg: DictConfig, input_shape: tuple[int, ...], n_classes: int) -> nn.Module:
    """The ``model`` group's network: its ``_target_`` called with ``input_shape`` and ``n_classes``."""
    net = targets.build("model", cfg, input_shape=input_shape, n_classes=n_classes)
    if not isinstance(net, nn.Module):
        raise ConfigError(f"model._target_={cfg._target_}: returned {type(net).__name__}, expected a torch.nn.Module")
    return net


def check_forward(net: nn.Module, cfg: DictConfig, x: torch.Tensor, n_classes: int) -> None:
    """One forward pass of two samples, before training: a model that fails on the data's shape or
    gives the wrong number of outputs is refused in one line. Eval mode: no dropout draw, no
    batch-norm update."""
    net.eval()
    try:
        with torch.no_grad():
            out = net(x[:2])
    except Exception as exc:
        reason = " ".join(str(exc).split())
        raise ConfigError(f"model._target_={cfg._target_}: fails on inputs of shape {tuple(x[:2].shape)} "
                          f"({type(exc).__name__}: {reason})") from exc
    if not isinstance(out, torch.Tensor) or out.shape != (len(x[:2]), n_classes):
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ConfigError(f"model._target_={cfg._target_}: returns {got} for inputs of shape {tuple(x[:2].shape)}; "
                          f"expected ({len(x[:2])}, {n_classes}): one score per class")


def mlp(
    input_shape: Sequence[int],
    n_classes: int,
    *,
    width: int = 256,
    depth: int = 1,
    hidden: Sequence[int] | None = None,
    activation: str = "relu",
    negative_slope: float = 0.01,
    activations: Sequence[str] | None = None,
    bias: bool = True,
    init: str = "default",
    init_std: float = 0.01,
    dropout: float = 0.0,
    output: str = "logits",
) -> nn.Sequential:
    """The MLP: ``hidden`` sizes (else ``depth`` layers of ``width``), ``activation`` for every hidden
    layer unless ``activations`` names one per layer; weights initialised per ``init``.

    Layers are created input to output, so under the same ``torch.manual_seed`` a default-init model
    draws the same initial weights as the seed notes' hand-written ``nn.Module`` classes. Inputs with
    more than one dimension (images as 1x28x28) are flattened first.
    """
    sizes = list(hidden) if hidden is not None else [width] * depth
    names = list(activations) if activations is not None else [activation] * len(sizes)
    layers: list[nn.Module] = [nn.Flatten()] if len(input_shape) > 1 else []
    fan_in = math.prod(input_shape)
    for size, name in zip(sizes, names, strict=True):
        layers += [nn.Linear(fan_in, size, bias=bias), activation_layer(name, negative_slope)]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        fan_in = size
    layers.append(nn.Linear(fan_in, n_classes, bias=bias))
    if output == "log_softmax":
        layers.append(nn.LogSoftmax(dim=1))
    net = nn.Sequential(*layers)
    if init != "default":
        for layer in net:
            if isinstance(layer, nn.Linear):
                init_weight(layer.weight, init, init_std)
    return net


def init_weight(weight: torch.Tensor, scheme: str, std: float) -> None:
    if scheme == "normal":
        nn.init.normal_(weight, std=std)
    elif scheme == "xavier_uniform":
        nn.init.xavier_uniform_(weight)
    elif scheme == "xavier_normal":
        nn.init.xavier_normal_(weight)
    elif scheme == "kaiming_uniform":
        nn.init.kaiming_uniform_(weight, nonlinearity="relu")
    elif scheme == "kaiming_normal":
        nn.init.kaiming_normal_(weight, nonlinearity="relu")
    else:
        raise ValueError(f"unknown init {scheme!r}")


def describe(net: nn.Module) -> str:
    """A one-line summary such as ``Linear(784->128, no bias) ReLU Linear(128->10, no bias) LogSoftmax``
    (a model that is not an ``nn.Sequential``: its class name)."""
    if not isinstance(net, nn.Sequential):
        return type(net).__name__
    parts = []
    for layer in net:
        if isinstance(layer, nn.Linear):
            bias = "" if layer.bias is not None else ", no bias"
            parts.append(f"Linear({layer.in_features}->{layer.out_features}{bias})")
        else:
            parts.append(type(layer).__name__)
    return " ".join(parts)


def count_parameters(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def loss_function(output: str):
    """NLL on log-probabilities, cross-entropy on logits: the same loss either way."""
    return F.nll_loss if output == "log_softmax" else F.cross_entropy
