"""Interleaved 2-D spirals, one arm per class: a dataset a user brings from their own code.

``conf/data/spirals.yaml`` names :func:`spirals` in ``_target_``. It returns ``(train, test)``
pairs of float features and integer labels; sweeplab holds out the validation split, checks the
shapes and labels, and infers ``n_classes`` from the labels.
"""
from __future__ import annotations

import numpy as np


def spirals(n_train: int, n_test: int, classes: int = 3, noise: float = 0.2, turns: float = 1.5,
            seed: int = 0) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)

    def sample(n: int) -> tuple[np.ndarray, np.ndarray]:
        labels = rng.integers(0, classes, size=n)
        radius = rng.uniform(0.1, 1.0, size=n)
        angle = 2 * np.pi * (turns * radius + labels / classes)
        points = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
        return (points + noise * 0.1 * rng.standard_normal((n, 2))).astype(np.float32), labels

    return sample(n_train), sample(n_test)
