"""OmegaConf with its interpolations' parse trees kept (sweeplab.interpolations) resolves every kind of
interpolation as a fresh parse does, and still refuses a text that does not parse."""
import pytest
from omegaconf import OmegaConf, grammar_parser
from omegaconf.errors import GrammarParseError

from sweeplab import interpolations

YAML = """
a: 1
b: ${a}
c: x_${b}_${a}
d: ${oc.select:missing.key,7}
e: ${oc.env:SWEEPLAB_TEST_INTERPOLATION,none}
f: ["${a}", "${c}"]
g: {h: "${..a}"}
i: ${oc.select:${oc.select:j,a}}
j: a
"""


def resolved() -> dict:
    return OmegaConf.to_container(OmegaConf.create(YAML), resolve=True)


def test_omegaconf_calls_the_kept_parser_by_the_names_it_imports():
    # train.py's register_configs has run (conftest): every caller OmegaConf has now uses the kept parser
    interpolations.keep_parse_trees()
    for name in interpolations.CALLERS:
        assert __import__(name, fromlist=["parse"]).parse is interpolations.parse
    parsed = interpolations.parse.cache_info().misses + interpolations.parse.cache_info().hits
    assert OmegaConf.create({"x": 1, "y": "${x}"}).y == 1
    assert interpolations.parse.cache_info().misses + interpolations.parse.cache_info().hits > parsed


def test_kept_trees_resolve_as_fresh_parses(monkeypatch):
    monkeypatch.setenv("SWEEPLAB_TEST_INTERPOLATION", "from-env")
    interpolations.keep_parse_trees()
    first, again = resolved(), resolved()  # the second resolution reads only kept trees
    for name in interpolations.CALLERS:
        monkeypatch.setattr(__import__(name, fromlist=["parse"]), "parse", grammar_parser.parse)
    assert first == again == resolved()
    assert first == {"a": 1, "b": 1, "c": "x_1_1", "d": 7, "e": "from-env", "f": [1, "x_1_1"], "g": {"h": 1},
                     "i": 1, "j": "a"}


def test_a_text_that_does_not_parse_is_refused_every_time():
    interpolations.keep_parse_trees()
    for _ in range(2):
        with pytest.raises(GrammarParseError):
            OmegaConf.create({"a": 1, "x": "${a b}"}).get("x")
