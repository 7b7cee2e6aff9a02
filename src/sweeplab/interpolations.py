"""OmegaConf's interpolation parser, with the parse trees of recent texts kept.

OmegaConf parses an interpolation's text (``${lr}``, ``${oc.select:optimizer.default_lr,null}``) with its
ANTLR grammar every time the value is read, and ANTLR's Python runtime is slow. A job reads the same few
texts many times (validating, fusing, building, writing its ``.hydra/`` files), and a sweep's jobs share
them, so most of that parsing repeats work already done. A parse tree depends only on the text and the
grammar rule, and resolving reads a tree without changing it (OmegaConf's ``GrammarVisitor``), so the
trees of recent texts are kept and handed out again; a text that does not parse still raises each time.

OmegaConf imports ``parse`` by name into the modules that call it (:data:`CALLERS`);
``tests/core/test_interpolations.py`` fails when OmegaConf changes that.
"""
from __future__ import annotations

import functools
import importlib

from omegaconf import grammar_parser

CALLERS = ("omegaconf.base", "omegaconf._utils")  # the modules that call grammar_parser.parse by name
KEEP = 4096  # texts: a config has tens of interpolations; a sweep's jobs rarely add new ones

parse = functools.lru_cache(maxsize=KEEP)(grammar_parser.parse)


def keep_parse_trees() -> None:
    """Make OmegaConf's callers of ``grammar_parser.parse`` use :func:`parse` (once per process is enough)."""
    for name in CALLERS:
        module = importlib.import_module(name)
        if module.parse is not parse:
            if module.parse is not grammar_parser.parse:
                raise RuntimeError(f"{name}.parse is not omegaconf.grammar_parser.parse: OmegaConf changed, "
                                   "see sweeplab/interpolations.py")
            module.parse = parse
