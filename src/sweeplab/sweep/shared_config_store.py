"""Composing a job without copying Hydra's whole ConfigStore.

Every composition (each job of a grid, each Optuna trial, each ``compose``) makes a
``CachingConfigRepository``, which deep-copies its config repository; Hydra's ``StructuredConfigSource``
holds the ``ConfigStore`` singleton in an attribute, so the copy takes every config node that Hydra, its
plugins and this app registered: most of what composing a small job costs, paid again per job. Hydra's
main branch reads the singleton where it needs it instead (facebookresearch/hydra pull request 2928, not
in a 1.3 release). Here a copy of the source shares the one live store (the source still holds it, so
a source pickled to a worker process without this is whole). ``tests/plugins/test_shared_config_store.py``
checks it and fails when Hydra changes the class.
"""
from __future__ import annotations

import copy
from typing import Any

from hydra._internal.core_plugins import structured_config_source


def _copy_sharing_store(source: Any, memo: dict[int, Any]) -> Any:
    """``copy.deepcopy`` of a ``StructuredConfigSource``: its attributes copied, its ``store`` shared."""
    copied = source.__class__.__new__(source.__class__)
    memo[id(source)] = copied
    memo[id(source.store)] = source.store
    copied.__dict__.update(copy.deepcopy(source.__dict__, memo))
    return copied


def share_config_store() -> None:
    """Make a deep copy of a ``StructuredConfigSource`` share its ConfigStore. After Hydra's plugin scan,
    which executes the module anew (a new class): the class is looked up here."""
    structured_config_source.StructuredConfigSource.__deepcopy__ = _copy_sharing_store
