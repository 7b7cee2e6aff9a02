"""Each job's config as Hydra's ``ConfigLoader.load_sweep_config`` composes it, composing once per
group of jobs that differ only in the values they set.

Composing a job (its defaults list, every config file, the merges) is most of what a job costs beside
a short training. Hydra composes in two steps: the defaults list (group choices, ``hydra.`` keys,
``+group=option``), then the job's value overrides (``key=value``), applied in order to the composed
config. Jobs whose overrides agree on everything of the first step share it here: it is composed once,
by Hydra, and each job gets a copy with its own value overrides applied as Hydra applies them, and the
fields Hydra derives from the overrides (``hydra.overrides.task``, ``hydra.job.override_dirname``) set
as Hydra sets them. A job with anything else (``+key=``/``++key=``/``~key`` on a value, a dict value,
``hydra.searchpath``), or whose value overrides fail to apply, is composed by Hydra whole, so its
error is Hydra's own. ``tests/plugins/test_compose_once.py`` checks the result against Hydra's composition.
A job's copy is unpickled from the composition's pickle (:class:`Kept`). :meth:`Composer.check` says
whether a job composes without keeping its config (the fused launcher checks a batch's later windows).

``hydra.job.override_dirname`` is formed here as Hydra's config loader forms it (its helper is private):
the task overrides' text outside ``exclude_keys``, sorted, joined by ``item_sep``, ``=`` as ``kv_sep``.
"""
from __future__ import annotations

import copy
import functools
import pickle
from dataclasses import dataclass
from typing import Optional, Sequence

from hydra.core.config_loader import ConfigLoader
from hydra.core.object_type import ObjectType
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.plugins.config_source import ConfigLoadError
from omegaconf import DictConfig, OmegaConf, open_dict


@dataclass(frozen=True)
class Kept:
    """A structure's composition, and its pickle: a copy unpickled takes a sixth of ``copy.deepcopy``'s
    time, and is the same config (OmegaConf pickles every node's state, its annotations included). A
    config that does not pickle (a structured config of a class defined in a function) is deep-copied."""

    cfg: DictConfig
    pickled: Optional[bytes]

    @classmethod
    def of(cls, cfg: DictConfig) -> "Kept":
        try:
            return cls(cfg, pickle.dumps(cfg, protocol=pickle.HIGHEST_PROTOCOL))
        except Exception:
            return cls(cfg, None)

    def copy(self) -> DictConfig:
        return copy.deepcopy(self.cfg) if self.pickled is None else pickle.loads(self.pickled)


class Composer:
    """Composes the jobs of one sweep (``master``: the sweep's config) with ``config_loader``.

    It keeps the compositions of the :attr:`KEEP` structures (overrides other than values) used last;
    a structure's first job is composed whole, and only a second one composes it for sharing: each
    Optuna trial has a structure of its own (its ``hydra.job.env_set``)."""

    KEEP = 64
    KEEP_PARSED = 1024

    def __init__(self, config_loader: ConfigLoader, master: DictConfig) -> None:
        self.loader, self.master = config_loader, master
        self.config_name = master.hydra.job.config_name
        self.hydra_overrides = list(OmegaConf.to_container(master.hydra.overrides.hydra))
        parser = OverridesParser.create()
        # each text parsed once: a sweep's jobs repeat most of their overrides (all but the swept values)
        self.parse = functools.lru_cache(maxsize=self.KEEP_PARSED)(lambda text: parser.parse_overrides([text])[0])
        self.bases: dict[tuple[str, ...], Optional[Kept]] = {}  # None: seen once; least recent first
        self.groups: dict[str, set[str]] = {}
        self.scratch: dict[int, tuple[list[str], DictConfig]] = {}  # id of a Kept -> (keys set, its copy)

    def compose(self, overrides: Sequence[str], num: int) -> DictConfig:
        """Job ``num``'s config: ``load_sweep_config`` with ``hydra.job.id`` and ``num`` set, as launchers set them."""
        cfg = self.derived(list(overrides))
        if cfg is None:
            cfg = self.loader.load_sweep_config(self.master, list(overrides))
        with open_dict(cfg):
            cfg.hydra.job.id = num
            cfg.hydra.job.num = num
        return cfg

    def derived(self, overrides: list[str]) -> Optional[DictConfig]:
        """The job's config from its group's composed one; None when it must be composed whole."""
        found = self.split(overrides)
        if found is None:
            return None
        base, parsed, values = found
        cfg = base.copy()
        if not self.applied(cfg, values):  # Hydra composes the job whole and raises its own error
            return None
        task = [o for o in parsed if not o.is_hydra_override()]
        job = cfg.hydra.job
        cfg.hydra.overrides.task = [o.input_line for o in task]
        dirname = job.config.override_dirname
        lines = sorted(o.input_line for o in task if o.key_or_group not in dirname.exclude_keys)
        job.override_dirname = dirname.item_sep.join(lines).replace("=", dirname.kv_sep)
        OmegaConf.copy_cache(from_config=self.master, to_config=cfg)  # the sweep's ${now:...}, as Hydra copies it
        return cfg

    def check(self, overrides: Sequence[str]) -> None:
        """Raise what composing the job would raise, keeping nothing of its config: a job :meth:`derived`
        would make has its values applied to a scratch copy of its group's composition (kept for the
        next job that sets the same keys, whose values then replace all of its own); any other job,
        or one whose values fail there, is composed by Hydra."""
        found = self.split(list(overrides))
        if found is not None:
            base, _, values = found
            keys = [o.key_or_group for o in values]
            scratch = self.scratch.get(id(base))
            if scratch is None or scratch[0] != keys:
                scratch = self.scratch[id(base)] = (keys, base.copy())
            if self.applied(scratch[1], values):
                return
            del self.scratch[id(base)]  # a failed update may have changed part of it
        self.loader.load_sweep_config(self.master, list(overrides))

    def split(self, overrides: list[str]) -> Optional[tuple[Kept, list[Override], list[Override]]]:
        """(the composition of the job's group, its parsed overrides, those that set values), or None
        when the job is composed whole."""
        parsed = [self.parse(text) for text in overrides]
        is_value = [self.sets_a_value(o) for o in parsed]
        if any(o.key_or_group == "hydra.searchpath" or not (value or self.is_composition(o))
               for o, value in zip(parsed, is_value, strict=True)):
            return None
        values = [o for o, value in zip(parsed, is_value, strict=True) if value]
        structure = tuple(o.input_line for o, value in zip(parsed, is_value, strict=True) if not value)
        seen = structure in self.bases
        base = self.bases.pop(structure, None)
        if seen and base is None:
            base = Kept.of(self.loader.load_sweep_config(self.master, list(structure)))
        self.bases[structure] = base
        while len(self.bases) > self.KEEP:
            dropped = self.bases.pop(next(iter(self.bases)))
            self.scratch.pop(id(dropped), None)
        return None if base is None else (base, parsed, values)

    @staticmethod
    def applied(cfg: DictConfig, values: list[Override]) -> bool:
        """Apply ``values`` to ``cfg`` as Hydra's ConfigLoaderImpl._apply_overrides_to_config applies a plain one;
        False when one fails."""
        try:
            for override in values:
                OmegaConf.update(cfg, override.key_or_group, override.value(), merge=True)
        except Exception:
            return False
        return True

    def sets_a_value(self, override: Override) -> bool:
        """``key=value`` on a config value (not a group, not Hydra's): applied after the defaults list."""
        return (override.input_line is not None and not override.input_line.startswith(("+", "~"))
                and not override.is_hydra_override() and not override.is_sweep_override()
                and override.package is None and not isinstance(override.value(), dict)
                and not self.is_group(override.key_or_group))

    def is_composition(self, override: Override) -> bool:
        """An override of the defaults list (a group choice, ``+group=option``) or of Hydra's config."""
        return override.is_hydra_override() or self.is_group(override.key_or_group)

    def is_group(self, key: str) -> bool:
        parent, _, name = key.rpartition("/")
        if parent not in self.groups:
            try:
                found = self.loader.get_group_options(parent, ObjectType.GROUP, self.config_name, self.hydra_overrides)
            except ConfigLoadError:
                found = []
            self.groups[parent] = set(found)
        return name in self.groups[parent]
