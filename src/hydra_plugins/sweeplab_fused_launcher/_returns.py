"""A job's ``JobReturn`` that holds its configs pickled (zlib) and unpickles them when read.

A launcher returns one ``JobReturn`` per job, and each holds the job's config and Hydra config: about
130 KB of OmegaConf nodes, most of a launcher's memory in a sweep of thousands. Packed, it is ~6 KB.
"""
from __future__ import annotations

import dataclasses
import pickle
import zlib
from typing import Any, Optional

from hydra.core.utils import JobReturn
from omegaconf import DictConfig


class PackedJobReturn(JobReturn):
    """``ret`` with ``cfg`` and ``hydra_cfg`` packed; each read gives a fresh copy (nothing a reader
    changes in one is kept). Make it once the job has ended: its callbacks see the configs themselves."""

    def __init__(self, ret: JobReturn) -> None:
        super().__init__(**{field.name: getattr(ret, field.name) for field in dataclasses.fields(JobReturn)})

    @property  # type: ignore[override]
    def cfg(self) -> Optional[DictConfig]:
        return unpack(self._cfg)

    @cfg.setter
    def cfg(self, value: Optional[DictConfig]) -> None:
        self._cfg = pack(value)

    @property  # type: ignore[override]
    def hydra_cfg(self) -> Optional[DictConfig]:
        return unpack(self._hydra_cfg)

    @hydra_cfg.setter
    def hydra_cfg(self, value: Optional[DictConfig]) -> None:
        self._hydra_cfg = pack(value)


def pack(cfg: Any) -> Any:
    """``cfg`` pickled and compressed; as it is when it does not pickle (a structured config of a class
    defined in a function)."""
    if cfg is None:
        return None
    try:
        return zlib.compress(pickle.dumps(cfg, protocol=pickle.HIGHEST_PROTOCOL), 1)
    except Exception:
        return cfg


def unpack(packed: Any) -> Any:
    return pickle.loads(zlib.decompress(packed)) if isinstance(packed, bytes) else packed
