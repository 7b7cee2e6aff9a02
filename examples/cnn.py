"""A small CNN for 28x28 grey images, as a user would bring their own model.

``conf/model/cnn.yaml`` names it in ``_target_``; sweeplab calls it with the data's ``input_shape``
and ``n_classes`` and its keys (``channels``, ``dropout``) as keyword arguments.
"""
from __future__ import annotations

import math

from torch import nn


def small_cnn(input_shape: tuple[int, ...], n_classes: int, channels: int = 16, dropout: float = 0.0) -> nn.Sequential:
    """Two conv-ReLU-maxpool blocks and a linear layer. Flat inputs (FashionMNIST as sweeplab keeps
    it, 784 values) are unflattened to 1 x 28 x 28 first."""
    layers: list[nn.Module] = []
    if len(input_shape) == 1:
        side = math.isqrt(input_shape[0])
        layers.append(nn.Unflatten(1, (1, side, side)))
        input_shape = (1, side, side)
    in_channels, height, width = input_shape
    layers += [
        nn.Conv2d(in_channels, channels, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(channels, 2 * channels, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Dropout(dropout),
        nn.Linear(2 * channels * (height // 4) * (width // 4), n_classes),
    ]
    return nn.Sequential(*layers)
