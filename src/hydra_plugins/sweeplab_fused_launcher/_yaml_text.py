"""``OmegaConf.to_yaml``'s text of configs that mostly agree (a fused group's members), made key by key
with each key's text kept and reused while its value is unchanged.

Emitting YAML (PyYAML's pure-Python emitter, which OmegaConf uses) is most of what writing a job's
``.hydra/`` files costs, and a group's members differ in a few keys only (``seed``, ``hydra.job.num``,
``hydra.runtime.output_dir``...). The text of a block mapping is the texts of its keys one after
another, since every key starts on a line of its own at the mapping's indent. So each value down to
:data:`DEPTH` levels is dumped on its own, nested in its parents' keys as in the config
(``{hydra: {job: {num: 3}}}``, so that it is indented and folded as there), and its parents' key lines
are dropped from its text. Where that may not hold (an empty config, a text that ends open, ``...``, or
a parent key the emitter writes in its complex ``?`` form) the whole config is dumped as
``OmegaConf.to_yaml`` dumps it.
"""
from __future__ import annotations

from typing import Any, Optional

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf._utils import get_omega_conf_dumper

DEPTH = 3  # key levels split: hydra.job.num


class YamlText:
    """Gives ``OmegaConf.to_yaml(cfg)``; remembers the last text of each value, so memory stays that of
    one config however many are written."""

    def __init__(self) -> None:
        # key path -> (repr of its value, its parents' key lines, its own lines)
        self.known: dict[tuple[Any, ...], tuple[str, list[str], str]] = {}

    def to_yaml(self, cfg: DictConfig) -> str:
        container = OmegaConf.to_container(cfg, resolve=False, enum_to_str=True)
        parts: list[str] = []
        if not container or not self.mapping((), container, [], parts):
            return OmegaConf.to_yaml(cfg)
        return "".join(parts)

    def mapping(self, path: tuple[Any, ...], mapping: dict, heads: list[str], parts: list[str]) -> bool:
        """Append the text of ``mapping`` (at ``path``, under the key lines ``heads``) to ``parts``;
        False where splitting it may not give the emitter's own text."""
        for key, value in mapping.items():
            at = (*path, key)
            if isinstance(value, dict) and value and len(at) < DEPTH:
                first = next(iter(value))
                own_heads, _ = self.piece((*at, first), value[first])
                head = own_heads[-1]
                if own_heads[:-1] != heads or head.lstrip().startswith("?") or not head.endswith(":\n"):
                    return False
                parts.append(head)
                if not self.mapping(at, value, own_heads, parts):
                    return False
                continue
            piece_heads, text = self.piece(at, value)
            if piece_heads != heads or not text.endswith("\n") or text.endswith("...\n"):
                return False
            parts.append(text)
        return True

    def piece(self, path: tuple[Any, ...], value: Any) -> tuple[list[str], str]:
        """The YAML of ``value`` nested in the keys of ``path``: (its parents' key lines, its own text),
        from memory if the value is unchanged. Values are compared by ``repr``: ``1``, ``1.0`` and ``True``
        are equal in Python, not in YAML."""
        shown = repr(value)
        known: Optional[tuple[str, list[str], str]] = self.known.get(path)
        if known is not None and known[0] == shown:
            return known[1], known[2]
        nested = value
        for key in reversed(path):
            nested = {key: nested}
        dumped = yaml.dump(nested, default_flow_style=False, allow_unicode=True, sort_keys=False,
                           Dumper=get_omega_conf_dumper())
        *lines, text = dumped.split("\n", len(path) - 1)  # at "\n" only, as the emitter breaks lines
        heads = [line + "\n" for line in lines]
        self.known[path] = (shown, heads, text)
        return heads, text
