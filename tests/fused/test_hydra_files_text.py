"""The fused launcher writes each member's ``.hydra/config.yaml`` and ``hydra.yaml`` key by key, reusing
the text of keys whose value did not change from the member before (``_yaml_text.YamlText``): every
text is byte for byte ``OmegaConf.to_yaml``'s, over every study in sweeps/ and values YAML writes in
special forms (quoted, multi-line, kept trailing newlines, empty, long, non-ASCII)."""
from __future__ import annotations

import pytest
from omegaconf import DictConfig, OmegaConf, open_dict

from conftest import REPO, compose_train
from hydra_plugins.sweeplab_fused_launcher._yaml_text import YamlText

STUDIES = sorted(path.stem for path in (REPO / "sweeps").glob("*.yaml"))
SPECIAL = [
    "yes", "1", "1.5", "null", "~", "", " leading space", "trailing space ", "a: b", "#hash", "- dash",
    "line\nbreak", "ends\n", "keeps\n\n", "tab\there", "quote ' and \"", "ünïcödé ✓", "x" * 200,
    "${interpolation}", "${oc.env:HOME,/tmp}", "...", "---", "a...", 0, 1, 1.0, True, None, float("nan"),
    [], {}, [1, [2, 3]], {"nested": {"deeper": ["x", {"y": None}]}}, "next\x85line", "para\u2029graph",
]


def assert_written_as_omegaconf_writes(texts: YamlText, cfg: DictConfig) -> None:
    assert texts.to_yaml(cfg) == OmegaConf.to_yaml(cfg)


@pytest.mark.parametrize("name", STUDIES)
def test_each_studys_members_are_written_as_omegaconf_writes_them(name):
    texts = YamlText()
    for seed in range(2):  # members differing in a value and in their Hydra job, as a fused group's do
        cfg = compose_train(f"+sweep={name}", "data=synthetic", f"seed={seed}", hydra_config=True)
        with open_dict(cfg):
            cfg.hydra.job.num = seed
            cfg.hydra.runtime.output_dir = f"/sweep/{seed}"
        task = OmegaConf.masked_copy(cfg, [key for key in cfg if key != "hydra"])
        assert_written_as_omegaconf_writes(texts, task)
        assert_written_as_omegaconf_writes(texts, OmegaConf.masked_copy(cfg, ["hydra"]))


def test_special_values_are_written_as_omegaconf_writes_them():
    texts = YamlText()
    for value in SPECIAL:  # each in turn at the top, one level down and deeper, between other keys
        cfg = OmegaConf.create({"first": 1, "top": value, "group": {"a": "x", "b": value, "c": [value]},
                                "yes": {"on": value}, "k" * 130: {"long key": value},
                                "deep": {"er": {"est": {"leaf": value, "x": [value]}, "y": value}}, "last": "end"})
        assert_written_as_omegaconf_writes(texts, cfg)
        assert_written_as_omegaconf_writes(texts, OmegaConf.create({"only": value}))
    assert_written_as_omegaconf_writes(texts, OmegaConf.create({}))


def test_a_value_that_changes_only_its_type_is_written_anew():
    texts = YamlText()
    for value in (1, True, 1.0, "1", 1):  # equal in Python (1 == True == 1.0), not in YAML
        assert_written_as_omegaconf_writes(texts, OmegaConf.create({"group": {"key": value}, "key": value}))
