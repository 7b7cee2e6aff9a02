import pytest
import torch
from torch import nn

from sweeplab.config import ACTIVATIONS, OPTIMIZER_NAMES, OPTIMIZER_OURS
from sweeplab.training.model import count_parameters, describe, instantiate_model, loss_function, mlp
from sweeplab.training.optim import build_optimizer


def build_mlp(activation="relu", **fields):
    return mlp((784,), 10, **{"width": 16, "activation": activation, "negative_slope": 0.2, **fields})


def linears(net):
    return [layer for layer in net if isinstance(layer, nn.Linear)]


def test_sizes_bias_and_parameter_count():
    net = build_mlp(hidden=[13, 8], bias=False)
    assert [(layer.in_features, layer.out_features) for layer in linears(net)] == [(784, 13), (13, 8), (8, 10)]
    assert all(layer.bias is None for layer in linears(net))
    assert count_parameters(net) == 784 * 13 + 13 * 8 + 8 * 10


def test_per_layer_activations_and_log_softmax_output():
    net = build_mlp("tanh", hidden=[13, 8], activations=["sigmoid", "relu"], output="log_softmax")
    assert describe(net) == "Linear(784->13) Sigmoid Linear(13->8) ReLU Linear(8->10) LogSoftmax"
    out = net(torch.rand(5, 784))
    torch.testing.assert_close(out.exp().sum(dim=1), torch.ones(5))


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_every_activation_builds_and_runs(name):
    net = build_mlp(name, depth=2)
    assert net(torch.rand(3, 784)).shape == (3, 10)
    if name == "leaky_relu":
        assert net[1].negative_slope == 0.2


def test_depth_zero_is_a_linear_model():
    assert describe(build_mlp(depth=0)) == "Linear(784->10)"


def test_dropout_after_each_hidden_activation():
    net = build_mlp(depth=2, dropout=0.3)
    assert describe(net) == "Linear(784->16) ReLU Dropout Linear(16->16) ReLU Dropout Linear(16->10)"


def test_normal_init_sets_weight_std_and_leaves_bias_default():
    torch.manual_seed(0)
    net = build_mlp(width=512, init="normal", init_std=0.01)
    first = linears(net)[0]
    assert abs(first.weight.std().item() - 0.01) < 0.0005
    # PyTorch's default bias init is U(-1/sqrt(fan_in), 1/sqrt(fan_in)): far wider than 0.01
    assert first.bias.abs().max().item() > 0.02


def test_default_init_draws_like_the_seed_notes_module():
    """Same seed, same layer order: the same initial weights as note 000's hand-written Model."""
    torch.manual_seed(420)
    ours = build_mlp(width=128, bias=False, output="log_softmax")
    torch.manual_seed(420)
    theirs = [nn.Linear(784, 128, bias=False), nn.Linear(128, 10, bias=False)]
    for mine, note in zip(linears(ours), theirs, strict=True):
        assert torch.equal(mine.weight, note.weight)


def test_loss_function_matches_output():
    logits = torch.randn(6, 10)
    target = torch.randint(0, 10, (6,))
    torch.testing.assert_close(loss_function("log_softmax")(logits.log_softmax(1), target),
                               loss_function("logits")(logits, target))


@pytest.mark.parametrize("name", OPTIMIZER_NAMES)
def test_optimizers_get_every_configured_keyword(make_cfg, name):
    cfg = make_cfg(f"optimizer={name}", "lr=0.05")
    net = build_mlp()
    optimizer = build_optimizer(cfg.optimizer, net.parameters(), torch.device("cpu"))
    group = optimizer.param_groups[0]
    assert group["lr"] == 0.05
    for key, value in cfg.optimizer.items():
        if key not in (*OPTIMIZER_OURS, "_target_", "_partial_"):
            assert group[key] == (tuple(value) if key == "betas" else value), key
    assert group.get("fused") == (name in ("adam", "adamw") or None)


def test_the_mlp_option_is_the_factory_called_with_the_datas_shape(make_cfg):
    cfg = make_cfg("model.width=32", "activation=leaky_relu", "activation.negative_slope=0.3")
    net = instantiate_model(cfg.model, (784,), 10)
    assert describe(net) == "Linear(784->32) LeakyReLU Linear(32->10)"
    assert net[1].negative_slope == 0.3


def test_images_with_channels_are_flattened_first():
    net = mlp((1, 28, 28), 5, width=8)
    assert describe(net) == "Flatten Linear(784->8) ReLU Linear(8->5)"
    assert net(torch.rand(3, 1, 28, 28)).shape == (3, 5)


def test_describe_names_a_model_that_is_not_sequential():
    assert describe(nn.Conv2d(1, 2, 3)) == "Conv2d"
