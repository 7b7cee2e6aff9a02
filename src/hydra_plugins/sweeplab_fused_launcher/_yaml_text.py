"""``OmegaConf.to_yaml``'s text of configs that mostly agree (a fused group's members), made key by key
with each key's text kept and reused while its value is unchanged.

Emitting YAML (PyYAML's pure-Python emitter, which OmegaConf uses) is most of what writing a job's
``.hydra/`` files costs, and a group's members differ in a few keys only (``seed``, ``hydra.job.num``,
``hydra.runtime.output_dir``...). The text of a block mapping is the texts of its keys one after
another, each dumped on its own as ``{key: value}``, since every key starts on a line of its own at
the mapping's indent; one level down, ``{key: {child: value}}`` repeats the parent's ``key:`` line,
which is dropped. Where that may not hold (an empty mapping, a text that ends open, ``...``, or a key
the emitter writes in its complex ``?`` form) the whole config is dumped as ``OmegaConf.to_yaml`` does.
"""
from __future__ import annotations

from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf._utils import get_omega_conf_dumper


class YamlText:
    """Gives ``OmegaConf.to_yaml(cfg)``; remembers the last text of each key (and of each child of a
    mapping key), so memory stays that of one config however many are written."""

    def __init__(self) -> None:
        self.known: dict[tuple[str, ...], tuple[str, str]] = {}  # key path -> (repr of value, its text)

    def to_yaml(self, cfg: DictConfig) -> str:
        container = OmegaConf.to_container(cfg, resolve=False, enum_to_str=True)
        if not container:
            return OmegaConf.to_yaml(cfg)
        parts = []
        for key, value in container.items():
            if isinstance(value, dict) and value:
                pieces = [self.piece((key, child), {key: {child: item}}) for child, item in value.items()]
                header = pieces[0].partition("\n")[0] + "\n"
                if header.startswith("?") or not header.endswith(":\n") or \
                        not all(piece.startswith(header) for piece in pieces):
                    return OmegaConf.to_yaml(cfg)
                parts += [header, *(piece[len(header):] for piece in pieces)]
            else:
                parts.append(self.piece((key,), {key: value}))
        if any(not part.endswith("\n") or part.endswith("...\n") for part in parts):
            return OmegaConf.to_yaml(cfg)
        return "".join(parts)

    def piece(self, path: tuple[str, ...], mapping: dict[str, Any]) -> str:
        """The YAML text of ``mapping`` (one key, the one at ``path``), from memory if its value is unchanged.
        Values are compared by ``repr``: ``1``, ``1.0`` and ``True`` are equal in Python, not in YAML."""
        shown = repr(mapping)
        known = self.known.get(path)
        if known is not None and known[0] == shown:
            return known[1]
        text = yaml.dump(mapping, default_flow_style=False, allow_unicode=True, sort_keys=False,
                         Dumper=get_omega_conf_dumper())
        self.known[path] = (shown, text)
        return text
