"""Composing a job without copying Hydra's whole ConfigStore.

Every composition (each job of a grid, each Optuna trial, each ``compose``) makes a
``CachingConfigRepository``, which deep-copies its config repository; Hydra's ``StructuredConfigSource``
holds the ``ConfigStore`` singleton in an attribute, so the copy takes every config node that Hydra, its
plugins and this app registered: most of what composing a small job costs, paid again per job. Hydra's
main branch reads the singleton where it needs it instead (facebookresearch/hydra pull request 2928, not
in a 1.3 release); :func:`share_config_store` does the same here, so a copied source reads the one live
store. ``tests/plugins/test_shared_config_store.py`` checks it and fails when Hydra changes the class.
"""
from __future__ import annotations

from typing import Any

from hydra._internal.core_plugins import structured_config_source
from hydra.core.config_store import ConfigStore


def _live_store(source: Any) -> ConfigStore:
    return ConfigStore.instance()


def _ignore(source: Any, store: ConfigStore) -> None:
    """``__init__`` still assigns the singleton; it is read live instead."""


def share_config_store() -> None:
    """Make ``StructuredConfigSource.store`` the live ConfigStore, not an attribute a copy duplicates.
    After Hydra's plugin scan, which executes the module anew (a new class): the class is looked up here."""
    source_class = structured_config_source.StructuredConfigSource
    if not isinstance(source_class.__dict__.get("store"), property):
        source_class.store = property(_live_store, _ignore)
