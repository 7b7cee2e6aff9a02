"""Fusion fails closed: every key a job's config can have is in the fused launcher's table
(member, shared or alone), a key outside it makes its job run alone, and what the stacked engine does
not do (debug=profile, grad_clip, per-batch schedules, other optimizers and models) runs alone with
the key and the job named in the log."""
from __future__ import annotations

import functools

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf, open_dict

from conftest import CONF, REPO, TINY, sweep_configs
from hydra_plugins.sweeplab_fused_launcher._fuse import plan, task_config
from hydra_plugins.sweeplab_fused_launcher._groups import FUSION, fusion_key, rule, unfusable_reason

GROUPS = sorted(p.name for p in CONF.iterdir() if p.is_dir() and p.name not in ("hydra", "sweep"))


def leaf_keys(node, prefix: str = "") -> set[str]:
    """Every dotted key of ``node`` without resolving it; an empty or null node is a key of its own."""
    if not OmegaConf.is_dict(node) or len(node) == 0:
        return {prefix[:-1]}
    return set().union(*(leaf_keys(node._get_node(key), f"{prefix}{key}.") for key in node))


def schema_keys() -> set[str]:
    """The train schema's keys and every group schema's under its group: what ConfigStore holds
    (a group's schemas are stored at the root as ``schema_<group>[_<name>].yaml``)."""
    store = ConfigStore.instance()
    schemas = {name: name.removesuffix(".yaml").split("_")[1] for name in store.list("") if name.startswith("schema_")}
    groups = set(schemas.values())
    keys = {key for key in leaf_keys(OmegaConf.structured(store.load("train_schema.yaml").node))
            if key not in groups}  # a group's node: its schemas' keys, below
    for name, group in schemas.items():
        keys |= {f"{group}.{key}" for key in leaf_keys(store.load(name).node)}
    return keys


@functools.cache
def option_keys() -> dict[str, set[str]]:
    """``group=option`` -> the keys of the config it composes, for every shipped option of every group."""
    found = {}
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        for group in GROUPS:
            for option in sorted((CONF / group).glob("*.yaml")):
                override = f"{group}={option.stem}"
                found[override] = leaf_keys(compose("train", [override]))
    return found


def test_the_walk_sees_every_group_and_option():
    options = option_keys()
    assert {"data", "model", "activation", "optimizer", "scheduler", "logger", "debug", "experiment"} <= set(GROUPS)
    assert len(options) == sum(len(list((CONF / g).glob("*.yaml"))) for g in GROUPS)
    assert "optimizer.momentum_decay" in options["optimizer=nadam"]  # a key only one option has
    assert {"lr", "grad_clip", "profile", "model.width", "data.noise"} <= schema_keys()


def test_every_key_of_the_schema_and_of_every_shipped_option_is_in_the_fusion_table():
    missing = {f"{key} (schema)" for key in schema_keys() if rule(key) is None}
    for override, keys in option_keys().items():
        missing |= {f"{key} ({override})" for key in keys if rule(key) is None}
    assert not missing, "classify in _groups.FUSION as member, shared or alone: " + ", ".join(sorted(missing))


def test_the_table_names_only_the_three_kinds():
    assert {fusion.kind for fusion in FUSION.values()} == {"member", "shared", "alone"}


def test_a_key_outside_the_table_runs_its_job_alone_and_the_log_names_it(caplog):
    configs = sweep_configs([*TINY, "seed=0"], [*TINY, "seed=1"])
    cfg = task_config(configs[1])
    with open_dict(cfg):  # an optimizer file without the schema: any argument of torch.optim.SGD passes
        cfg.optimizer = {**OmegaConf.to_container(cfg.optimizer), "dampening": 0.5}
    assert unfusable_reason(cfg).startswith("optimizer.dampening: not in the fused launcher's table")
    with caplog.at_level("INFO"):
        groups = plan(configs, [task_config(configs[0]), cfg], max_memory_mb=None, max_members=None)
    assert groups == [[0], [1]]
    assert "alone #1: optimizer.dampening: not in the fused launcher's table" in caplog.text


@pytest.mark.parametrize("override, reason", [
    ("debug=profile", "profile=True (a profile is one job's ops"),
    ("grad_clip=1.0", "grad_clip=1.0 (the stacked engine does not clip gradients)"),
    ("scheduler=warmup_cosine", "scheduler.interval=step (fused schedules step per epoch"),
    ("optimizer=nadam", "optimizer._target_=torch.optim.NAdam (the stacked optimizer is torch's sgd"),
    (f"hydra.searchpath=[file://{REPO / 'examples' / 'conf'}] model=cnn",
     "model._target_=examples.cnn.small_cnn (the stacked model is the built-in sweeplab.training.model.mlp)"),
    ("optimizer.name=adam", "optimizer._target_=torch.optim.SGD"),  # a name that is not its target's
])
def test_what_the_stacked_engine_does_not_do_runs_alone_named_by_key_and_job(caplog, override, reason):
    configs = sweep_configs(*([*TINY, f"seed={seed}", *override.split()] for seed in (0, 1)))
    with caplog.at_level("INFO"):
        groups = plan(configs, [task_config(c) for c in configs], max_memory_mb=None, max_members=None)
    assert groups == [[0], [1]]
    assert f"alone #0: {reason}" in caplog.text and f"alone #1: {reason}" in caplog.text


def test_debug_options_other_than_profile_fuse(caplog):
    for option in ("fdr", "limit", "overfit"):
        configs = sweep_configs(*([*TINY, f"seed={seed}", f"debug={option}"] for seed in (0, 1)))
        assert plan(configs, [task_config(c) for c in configs], max_memory_mb=None, max_members=None) == [[0, 1]]


def test_member_keys_leave_the_group_key_alone_and_shared_keys_split_it():
    base = task_config(sweep_configs(TINY)[0])

    def key_with(key: str, value) -> str:
        cfg = base.copy()
        OmegaConf.update(cfg, key, value, force_add=True)
        return fusion_key(cfg)

    assert key_with("seed", 7) == key_with("lr", 0.5) == key_with("model.dropout", 0.0) == fusion_key(base)
    assert key_with("model.dropout", 0.3) != fusion_key(base)  # dropout on: another op
    for shared in ("batch_size", "epochs", "model.width", "data.noise", "activation.name", "device"):
        assert key_with(shared, OmegaConf.select(base, shared) * 2) != fusion_key(base), shared


def test_the_default_config_fuses():
    assert unfusable_reason(task_config(sweep_configs(TINY)[0])) is None
