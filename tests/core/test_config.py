import pytest
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from conftest import CONF
from sweeplab.config import ACTIVATIONS, OPTIMIZER_NAMES, MLPConfig, TrainConfig, hidden_sizes, problems, validate
from sweeplab.errors import ConfigError


def test_default_composes_to_the_schema(make_cfg):
    cfg = make_cfg()
    assert OmegaConf.get_type(cfg) is TrainConfig
    assert OmegaConf.get_type(cfg.model) is MLPConfig
    assert (cfg.data.name, cfg.activation.name, cfg.optimizer.name) == ("fashion_mnist", "relu", "sgd")
    assert cfg.data.system_root == "/usr/share/datasets/fashion-mnist"
    assert problems(cfg) == []


@pytest.mark.parametrize("group", ["data", "model", "activation", "optimizer", "experiment"])
def test_every_option_of_every_group_composes_and_validates(make_cfg, group):
    options = sorted(p.stem for p in (CONF / group).glob("*.yaml"))
    assert options
    for option in options:
        cfg = make_cfg(f"{group}={option}")
        assert problems(cfg) == [], option


def test_conf_options_match_the_names_the_code_knows(make_cfg):
    assert sorted(p.stem for p in (CONF / "activation").glob("*.yaml")) == sorted(ACTIVATIONS)
    options = sorted(p.stem for p in (CONF / "optimizer").glob("*.yaml"))
    # the built-ins carry a `name`; other options (nadam) are plain `_target_` files
    names = {make_cfg(f"optimizer={option}").optimizer.get("name") for option in options}
    assert sorted(names - {None}) == sorted(OPTIMIZER_NAMES)


@pytest.mark.parametrize("optimizer", OPTIMIZER_NAMES)
def test_top_level_lr_reaches_every_optimizer(make_cfg, optimizer):
    assert make_cfg(f"optimizer={optimizer}", "lr=0.0123").optimizer.lr == 0.0123


def test_types_are_enforced_while_composing(make_cfg):
    with pytest.raises(ConfigCompositionException, match="lr=abc") as info:
        make_cfg("lr=abc")
    assert "could not be converted to Float" in str(info.value.__cause__)
    with pytest.raises(ConfigCompositionException, match="Could not override 'lrr'"):
        make_cfg("lrr=0.1")


@pytest.mark.parametrize(
    "override, message",
    [
        ("lr=-1", "lr=-1.0: must be a number > 0"),
        ("lr=0", "lr=0.0: must be a number > 0"),
        ("batch_size=0", "batch_size=0: must be >= 1"),
        ("epochs=-1", "epochs=-1: must be >= 1"),
        ("model.width=0", "model.width=0: must be >= 1"),
        ("model.depth=-2", "model.depth=-2: must be >= 0"),
        ("model.dropout=1.0", "model.dropout=1.0: must be a number in [0, 1)"),
        ("model.init=magic", "model.init='magic': must be one of default, normal"),
        ("model.output=probs", "model.output='probs': must be one of logits, log_softmax"),
        ("model.hidden=[16,0]", "model.hidden=[16, 0]: every size must be an integer >= 1"),
        ("activation.name=swishy", "activation.name='swishy': must be one of relu"),
        ("optimizer.momentum=-0.5", "optimizer.momentum=-0.5: must be >= 0"),
        ("optimizer.lr=-3", "optimizer.lr=-3.0: must be a number > 0"),
        ("data.val_fraction=1.5", "data.val_fraction=1.5: must be a number in (0, 1)"),
        ("data.val_fraction=0", "data.val_fraction=0.0: must be a number in (0, 1)"),
        ("progress=fancy", "progress='fancy': must be one of auto, bar, lines"),
        ("objective=accuracy", "objective='accuracy': must be one of best_val_acc"),
        ("data.mean=0.5", "data.mean=0.5, data.std=None: set both or neither"),
        ("+lrr=0.1", "lrr=0.1: unknown key (nearest known keys: lr)"),
        ("+model.widht=64", "model.widht=64: unknown key (nearest known keys: width)"),
        ("lr=inf", "lr=inf: must be a finite number"),
        ("lr=nan", "lr=nan: must be a finite number"),
        ("optimizer.weight_decay=inf", "optimizer.weight_decay=inf: must be a finite number"),
        ("model.init_std=-inf", "model.init_std=-inf: must be a finite number"),
        ("data.root=/etc/passwd", "data.root='/etc/passwd': exists but is not a folder"),
    ],
)
def test_range_errors_name_key_value_and_what_is_allowed(make_cfg, override, message):
    cfg = make_cfg(override)
    with pytest.raises(ConfigError) as info:
        validate(cfg)
    assert message in str(info.value)


def test_interpolated_lr_is_reported_once(make_cfg):
    assert problems(make_cfg("lr=-1")) == ["lr=-1.0: must be a number > 0 and <= 3.403e+38 (float32)"]
    assert problems(make_cfg("lr=inf")) == ["lr=inf: must be a finite number"]


def test_group_additions_and_schema_keys_are_not_unknown(make_cfg):
    assert problems(make_cfg("+sweep=lr")) == []
    assert problems(make_cfg("experiment=seed_004", "optimizer=adamw", "data=synthetic")) == []
    assert problems(make_cfg("data.root=/nonexistent/yet")) == []  # torchvision may download into it


def test_an_unknown_key_far_from_any_lists_the_known_ones(make_cfg):
    (found,) = problems(make_cfg("+zzzz=1"))
    assert found.startswith("zzzz=1: unknown key (known keys: data, model, activation, optimizer, ")
    assert ", lr, batch_size, " in found


def test_per_layer_activations_must_match_depth(make_cfg):
    found = problems(make_cfg("model.depth=2", "model.activations=[relu]"))
    assert found == ["model.activations=['relu']: must name one activation per hidden layer (2)"]
    found = problems(make_cfg("model.activations=[swish]"))
    assert "model.activations has 'swish'" in found[0]


def test_adam_betas_checked(make_cfg):
    assert problems(make_cfg("optimizer=adam", "optimizer.betas=[0.9,1.5]")) == [
        "optimizer.betas=[0.9, 1.5]: must be two numbers in [0, 1)"
    ]


def test_hidden_sizes_from_width_depth_or_explicit(make_cfg):
    assert hidden_sizes(make_cfg("model.width=32", "model.depth=3").model) == [32, 32, 32]
    assert hidden_sizes(make_cfg("model.hidden=[13,8]").model) == [13, 8]
    assert hidden_sizes(make_cfg("model.depth=0").model) == []


# The seed notes' setups, field by field (README's experiment table).
SEED_SETUPS = {
    "seed_000": dict(data="fashion_mnist", hidden=[128], bias=False, activations=["relu"], init="default",
                     output="log_softmax", optimizer="sgd", lr=0.15, momentum=0.8, batch_size=128,
                     drop_last=False, epochs=3, seed=420),
    "seed_001": dict(data="fashion_mnist", hidden=[256], bias=True, activations=["relu"], init="normal",
                     output="logits", optimizer="sgd", lr=0.1, momentum=0.0, batch_size=256,
                     drop_last=False, epochs=10, seed=0),
    "seed_002": dict(data="kmnist", hidden=[64], bias=True, activations=["sigmoid"], init="default",
                     output="logits", optimizer="sgd", lr=0.01, momentum=0.0, batch_size=32,
                     drop_last=False, epochs=5, seed=0),
    "seed_003a": dict(data="fashion_mnist", hidden=[13, 8], bias=True, activations=["sigmoid", "relu"],
                      init="default", output="log_softmax", optimizer="sgd", lr=0.01, momentum=0.5,
                      batch_size=124, drop_last=True, epochs=5, seed=1412),
    "seed_003b": dict(data="fashion_mnist", hidden=[128], bias=False, activations=["relu"], init="default",
                      output="log_softmax", optimizer="sgd", lr=0.15, momentum=0.8, batch_size=128,
                      drop_last=True, epochs=5, seed=1412),
    "seed_004": dict(data="fashion_mnist", hidden=[256], bias=True, activations=["relu"], init="default",
                     output="logits", optimizer="adam", lr=0.001, momentum=None, batch_size=64,
                     drop_last=False, epochs=5, seed=0),
}


@pytest.mark.parametrize("name", sorted(SEED_SETUPS))
def test_experiments_match_their_seed_notes(make_cfg, name):
    cfg = make_cfg(f"experiment={name}")
    want = SEED_SETUPS[name]
    sizes = hidden_sizes(cfg.model)
    got = dict(
        data=cfg.data.name, hidden=sizes, bias=cfg.model.bias,
        activations=list(cfg.model.activations) if cfg.model.activations else [cfg.activation.name] * len(sizes),
        init=cfg.model.init, output=cfg.model.output, optimizer=cfg.optimizer.name, lr=cfg.optimizer.lr,
        momentum=cfg.optimizer.get("momentum"), batch_size=cfg.batch_size, drop_last=cfg.drop_last,
        epochs=cfg.epochs, seed=cfg.seed,
    )
    assert got == want
    if name == "seed_001":
        assert cfg.model.init_std == 0.01


def test_an_experiment_still_takes_overrides(make_cfg):
    cfg = make_cfg("experiment=seed_002", "data=fashion_mnist", "seed=3")
    assert (cfg.data.name, cfg.seed, cfg.model.width) == ("fashion_mnist", 3, 64)
