"""The Optuna sweeper's pure parts: Hydra sweep syntax -> Optuna distributions, grids, samplers."""
import warnings

import optuna
import pytest
from omegaconf import OmegaConf
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from hydra_plugins.sweeplab_optuna_sweeper._build import build_pruner, build_sampler
from hydra_plugins.sweeplab_optuna_sweeper._search_space import (
    SearchSpaceError,
    grid,
    parse_search_space,
    suggest,
)
from hydra_plugins.sweeplab_optuna_sweeper.config import PRUNERS, SAMPLERS


@pytest.mark.parametrize(
    "override, key, expected",
    [
        ("lr=tag(log, interval(1e-4, 1e-1))", "lr", FloatDistribution(1e-4, 1e-1, log=True)),
        ("model.dropout=interval(0, 0.5)", "model.dropout", FloatDistribution(0.0, 0.5)),
        ("model.depth=int(interval(1, 3))", "model.depth", IntDistribution(1, 3)),
        ("model.width=tag(log, int(interval(16, 512)))", "model.width", IntDistribution(16, 512, log=True)),
        ("batch_size=range(32, 257, 32)", "batch_size", IntDistribution(32, 256, step=32)),
        ("epochs=range(1, 4)", "epochs", IntDistribution(1, 3)),
        ("x=range(0, 1, 0.25)", "x", FloatDistribution(0.0, 0.75, step=0.25)),
        ("optimizer=choice(sgd, adam)", "optimizer", CategoricalDistribution(("sgd", "adam"))),
        ("optimizer=sgd,adam,rmsprop", "optimizer", CategoricalDistribution(("sgd", "adam", "rmsprop"))),
        ("model.bias=choice(true, false)", "model.bias", CategoricalDistribution((True, False))),
        ("model.width=64,128", "model.width", CategoricalDistribution((64, 128))),
    ],
)
def test_sweep_syntax_to_distribution(override, key, expected):
    space = parse_search_space([override])
    assert space.distributions == {key: expected}
    assert space.fixed == {}


@pytest.mark.parametrize("override, key, value", [("epochs=5", "epochs", "5"), ("+sweep=lr", "+sweep", "lr"),
                                                  ("data=synthetic", "data", "synthetic")])
def test_plain_overrides_are_fixed(override, key, value):
    space = parse_search_space([override])
    assert space.fixed == {key: value} and space.distributions == {}


def test_shuffled_range_is_a_choice_of_its_values():
    (dist,) = parse_search_space(["w=shuffle(range(1, 4))"]).distributions.values()
    assert isinstance(dist, CategoricalDistribution) and sorted(dist.choices) == [1, 2, 3]


def test_later_entries_win():
    space = parse_search_space(["lr=interval(0.1, 1)", "epochs=3", "lr=0.5", "epochs=choice(1, 2)"])
    assert space.fixed == {"lr": "0.5"}
    assert space.distributions == {"epochs": CategoricalDistribution((1, 2))}


@pytest.mark.parametrize(
    "override, message",
    [
        ("lr=tag(log, interval(-1, 1))", "lr=tag(log, interval(-1, 1)): a log scale needs low > 0"),
        ("lr=interval(1, 0.1)", "lr=interval(1, 0.1): needs low < high"),
        ("batch_size=range(64, 32)", "batch_size=range(64, 32): needs start < stop and step > 0"),
        ("lr=interval(0.1)", "cannot parse 'lr=interval(0.1)'"),
        ("lr=tag(log, interval(1e-4, 1e-1)", "cannot parse"),
    ],
)
def test_bad_entries_give_one_clear_error(override, message):
    with pytest.raises(SearchSpaceError) as info:
        parse_search_space([override])
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_grid_enumerates_discrete_distributions():
    space = parse_search_space(["a=choice(x, y)", "b=range(1, 7, 2)", "c=range(0, 1, 0.5)"])
    assert grid(space) == {"a": ["x", "y"], "b": [1, 3, 5], "c": [0.0, 0.5]}


def test_grid_refuses_continuous_intervals():
    with pytest.raises(SearchSpaceError, match="lr: the grid sampler needs discrete values"):
        grid(parse_search_space(["lr=interval(0.1, 1)"]))


def test_suggest_stays_inside_each_distribution():
    space = parse_search_space(["lr=tag(log, interval(1e-4, 1e-1))", "d=int(interval(1, 3))",
                                "o=choice(sgd, adam)", "b=range(32, 257, 32)"])
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(20):
        trial = study.ask()
        values = {key: suggest(trial, key, dist) for key, dist in space.distributions.items()}
        assert 1e-4 <= values["lr"] <= 1e-1 and values["d"] in (1, 2, 3) and values["o"] in ("sgd", "adam")
        assert values["b"] in range(32, 257, 32)
        study.tell(trial, 0.0)
    assert trial.distributions == space.distributions


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_every_sampler_option_builds_a_working_sampler(name):
    space = parse_search_space(["x=range(0, 4)", "y=choice(a, b)"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # QMCSampler, GPSampler
        sampler = build_sampler(OmegaConf.structured(SAMPLERS[name]), seed=3, grid=grid(space))
    study = optuna.create_study(sampler=sampler)
    for _ in range(4):
        trial = study.ask()
        hits = zip(space.distributions.items(), (1, "a"), strict=True)
        study.tell(trial, sum(suggest(trial, key, dist) == value for (key, dist), value in hits))
    assert len(study.trials) == 4 and all(t.state.name == "COMPLETE" for t in study.trials)


# the pruners Optuna cannot build from their defaults alone
PRUNER_SETTINGS = {"threshold": {"lower": 0.1},
                   "patient": {"wrapped_pruner": {"_target_": "optuna.pruners.MedianPruner"}}}


@pytest.mark.parametrize("name", sorted(PRUNERS))
def test_every_pruner_option_builds_an_optuna_pruner(name):
    node = OmegaConf.merge(OmegaConf.structured(PRUNERS[name]), PRUNER_SETTINGS.get(name, {}))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # PatientPruner, WilcoxonPruner
        assert isinstance(build_pruner(node), optuna.pruners.BasePruner)


@pytest.mark.parametrize(
    "override, official_high",
    [("x=range(-5.5, 5.5, step=0.5)", 5.5), ("epochs=range(1, 4)", 4), ("x=range(0, 1, 0.25)", 1.0)],
)
def test_a_range_the_official_plugin_reads_otherwise_is_named(override, official_high):
    (key, difference), = parse_search_space([override]).official_differences.items()
    assert key == override.split("=")[0]
    assert difference.endswith(f"hydra-optuna-sweeper's other samplers go up to {official_high}")


@pytest.mark.parametrize(
    "override", ["batch_size=range(32, 257, 32)", "x=range(0, 1.1, 0.5)", "x=shuffle(range(1, 4))",
                 "x=interval(0, 1)", "x=choice(1, 2)", "x=tag(log, interval(1e-4, 1e-1))"])
def test_entries_both_plugins_read_alike_get_no_warning(override):
    assert parse_search_space([override]).official_differences == {}
