"""The MLP: Linear -> activation (-> dropout) per hidden layer, then a Linear to the classes."""
from __future__ import annotations

import torch
from omegaconf import DictConfig
from torch import nn
from torch.nn import functional as F

from sweeplab.config import hidden_sizes

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


def build_mlp(model: DictConfig, activation: DictConfig, in_features: int, n_classes: int) -> nn.Sequential:
    """The network for the ``model`` and ``activation`` groups, weights initialised per ``model.init``.

    Layers are created input to output, so under the same ``torch.manual_seed`` a default-init model
    draws the same initial weights as the seed notes' hand-written ``nn.Module`` classes.
    """
    sizes = hidden_sizes(model)
    names = list(model.activations) if model.activations is not None else [activation.name] * len(sizes)
    layers: list[nn.Module] = []
    fan_in = in_features
    for size, name in zip(sizes, names):
        layers += [nn.Linear(fan_in, size, bias=model.bias), activation_layer(name, activation.negative_slope)]
        if model.dropout > 0:
            layers.append(nn.Dropout(model.dropout))
        fan_in = size
    layers.append(nn.Linear(fan_in, n_classes, bias=model.bias))
    if model.output == "log_softmax":
        layers.append(nn.LogSoftmax(dim=1))
    net = nn.Sequential(*layers)
    if model.init != "default":
        for layer in net:
            if isinstance(layer, nn.Linear):
                init_weight(layer.weight, model.init, model.init_std)
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


def describe(net: nn.Sequential) -> str:
    """A one-line summary such as ``Linear(784->128, no bias) ReLU Linear(128->10, no bias) LogSoftmax``."""
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
