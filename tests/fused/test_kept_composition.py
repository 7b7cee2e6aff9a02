"""A structure's kept composition (``sweeplab.sweep.compose.Kept``) gives copies that are the config
itself, whether it pickles (unpickled copies) or not (a structured config of a class defined in a
function: deep copies); a copy changed leaves the next one as it was."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List

from omegaconf import OmegaConf

from sweeplab.sweep.compose import Kept


def test_copies_equal_the_composition_pickled_or_not():
    @dataclass
    class Local:  # defined in a function: pickle cannot find it by name
        sizes: List[int] = field(default_factory=lambda: [1, 2])
        env: Dict[str, str] = field(default_factory=dict)
        lr: float = 0.1

    for cfg, pickles in ((OmegaConf.create({"a": {"b": [1, "${a.c}"], "c": 2}}), True),
                         (OmegaConf.structured(Local), False)):
        kept = Kept.of(cfg)
        assert (kept.pickled is not None) == pickles
        first = kept.copy()
        assert first is not cfg and OmegaConf.to_yaml(first) == OmegaConf.to_yaml(cfg)
        assert OmegaConf.get_type(first) == OmegaConf.get_type(cfg)
        first[next(iter(first))] = {"changed": True} if pickles else [3]
        assert OmegaConf.to_yaml(kept.copy()) == OmegaConf.to_yaml(cfg)
