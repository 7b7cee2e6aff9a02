"""The fused launcher and the stacked model: same results as one job at a time, grouping, memory, bad input.

Tolerance, fused against unfused: every loss within 1e-3 relative (observed: <= 2e-4 after 2 epochs),
every accuracy within 0.01 (observed: equal). A stacked layer is a batched matmul, whose float
summation order differs from a plain one, so the last bits differ and grow a little per step. Dropout
is in the parity grid on the CPU: each member draws its run's masks, bit for bit, from its own copy of
its run's random stream (on CUDA torch's fused dropout kernel draws another way: same rates, other masks).
"""
from __future__ import annotations

import copy
import math
import re
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from conftest import (
    ACC_ATOL,
    LOSS_RTOL,
    TINY,
    assert_same_run_within_tolerance,
    job_returns,
    multirun,
    sweep_configs,
)
from hydra_plugins.sweeplab_fused_launcher._fuse import plan, task_config
from hydra_plugins.sweeplab_fused_launcher._groups import MB, member_bytes
from sweeplab.errors import ConfigError
from sweeplab.fused.stacked import OPTIMIZERS, StackedMLP, StackedOptimizer
from sweeplab.job.task import main
from sweeplab.jobfiles import read_metrics
from sweeplab.training.model import ACTIVATION_LAYERS, loss_function, mlp
from sweeplab.training.optim import build_optimizer

GRID = [*TINY, "model.width=32", "seed=0,1"]


ADAM_MEMBERS = {"lr": [1e-3, 1e-2, 3e-4], "betas": [[0.9, 0.999], [0.8, 0.99], [0.95, 0.9]], "eps": [1e-8, 1e-6, 1e-8]}
RMSPROP_MEMBERS = {"lr": [1e-3, 1e-2, 3e-4], "alpha": [0.99, 0.9, 0.5], "eps": [1e-8, 1e-6, 1e-8],
                   "weight_decay": [0.0, 1e-2, 0.0]}


@pytest.mark.parametrize("shared, members", [
    ({"name": "sgd", "nesterov": False},
     {"lr": [0.1, 0.05, 0.01], "momentum": [0.9, 0.0, 0.5], "weight_decay": [0.0, 1e-3, 1e-2]}),
    ({"name": "sgd", "nesterov": True},
     {"lr": [0.1, 0.05, 0.01], "momentum": [0.9, 0.8, 0.5], "weight_decay": [0.0, 0.0, 1e-3]}),
    ({"name": "adam"}, {**ADAM_MEMBERS, "weight_decay": [0.0, 1e-2, 0.0]}),
    ({"name": "adamw"}, {**ADAM_MEMBERS, "weight_decay": [0.01, 0.1, 0.0]}),
    ({"name": "rmsprop", "centered": False}, {**RMSPROP_MEMBERS, "momentum": [0.0, 0.9, 0.5]}),
    ({"name": "rmsprop", "centered": True}, {**RMSPROP_MEMBERS, "momentum": [0.0, 0.0, 0.0]}),
], ids=["sgd", "sgd-nesterov", "adam", "adamw", "rmsprop", "rmsprop-centered"])
def test_the_stacked_optimizer_steps_as_torch_optim_does_per_member(shared, members):
    configs = [OmegaConf.create({"_target_": OPTIMIZERS[shared["name"]], "_partial_": True, **shared,
                                 **{key: values[k] for key, values in members.items()}}) for k in range(3)]
    torch.manual_seed(0)
    start = torch.randn(3, 20, 7)
    stacked = start.clone().requires_grad_(True)
    stacked_optimizer = StackedOptimizer([stacked], configs)
    members = [start[k].clone().requires_grad_(True) for k in range(3)]
    references = [build_optimizer(cfg, [p], torch.device("cpu")) for cfg, p in zip(configs, members, strict=True)]
    for _ in range(5):
        grad = torch.randn(3, 20, 7)
        stacked.grad = grad.clone()
        stacked_optimizer.step()
        for k, (p, reference) in enumerate(zip(members, references, strict=True)):
            p.grad = grad[k].clone()
            reference.step()
    for k in range(3):
        torch.testing.assert_close(stacked.detach()[k], members[k].detach(), rtol=1e-5, atol=1e-6)


def torch_func_gradients(members: list, x: torch.Tensor, y: torch.Tensor, output: str) -> dict:
    """Each member's gradient of its own mean loss, by PyTorch's own autograd over the members' own
    modules: ``stack_module_state`` + ``functional_call`` + ``vmap`` + ``grad`` (torch.func's
    model-ensembling recipe); name -> (K, *shape)."""
    params, buffers = torch.func.stack_module_state(members)
    skeleton = copy.deepcopy(members[0]).to("meta")
    loss_fn = loss_function(output)

    def loss(p, b, xk, yk):
        return loss_fn(torch.func.functional_call(skeleton, (p, b), (xk,)), yk)

    return torch.func.vmap(torch.func.grad(loss))(params, buffers, x, y)


@pytest.mark.parametrize("activation", sorted([*ACTIVATION_LAYERS, "leaky_relu"]))
@pytest.mark.parametrize("variant", [
    {},
    {"bias": False, "output": "log_softmax", "hidden": [12, 7]},
], ids=["plain", "no-bias-log-softmax-depth-2"])
def test_the_stacked_backward_gives_torch_funcs_gradients(activation, variant):
    members = []
    for k in range(3):
        torch.manual_seed(k)
        members.append(mlp((20,), 5, width=9, activation=activation, **variant))
    stacked = StackedMLP(members, [0.0] * 3)
    x, y = torch.randn(3, 8, 20), torch.randint(0, 5, (3, 8))
    output = variant.get("output", "logits")
    reference = torch_func_gradients(members, x, y, output)

    with torch.no_grad():
        log_probs, grad = stacked.log_probs_and_grad(stacked(x), y, 1 / y.shape[1])
        stacked.backward(grad)
    grads = [p.grad for p in stacked.parameters()]
    for k, member in enumerate(members):
        got = stacked.member_slices(k, grads)
        assert got.keys() == reference.keys()
        for name, tensor in got.items():
            torch.testing.assert_close(tensor, reference[name][k], rtol=1e-5, atol=1e-7)
        # each member's loss is its own network's loss
        expected = loss_function(output)(member(x[k]), y[k]).item()
        assert -log_probs[k].mean().item() == pytest.approx(expected, rel=1e-5)


DROPOUT = [0.3, 0.5, 0.3]


def members_with_dropout() -> tuple[list, list[torch.Tensor]]:
    """Three MLPs with dropout (two rates), each built after ``torch.manual_seed(k)`` as a run builds
    it, and torch's RNG state right after each one: where its run alone draws its masks from."""
    members, states = [], []
    for k, p in enumerate(DROPOUT):
        torch.manual_seed(k)
        members.append(mlp((20,), 5, hidden=[12, 7], dropout=p))
        states.append(torch.get_rng_state())
    return members, states


def test_each_stacked_member_draws_its_own_runs_dropout_masks():
    members, states = members_with_dropout()
    stacked = StackedMLP(members, DROPOUT, [torch.Generator().set_state(state) for state in states])
    x = torch.randn(3, 8, 20)
    with torch.no_grad():
        first = stacked(x)
        stacked.keep(torch.tensor([0, 2]))  # member 1 stopped: the others' streams go on
        second = dict(zip([0, 2], stacked(x[[0, 2]]), strict=True))
        for k, member in enumerate(members):  # its run alone: its RNG state, then its forwards in order
            torch.set_rng_state(states[k])
            member.train()
            torch.testing.assert_close(first[k], member(x[k]), rtol=1e-5, atol=1e-6)
            if k in second:
                torch.testing.assert_close(second[k], member(x[k]), rtol=1e-5, atol=1e-6)
    # evaluation draws nothing
    stacked.training = False
    before = [generator.get_state() for generator in stacked.generators]
    stacked(x[[0, 2]])
    assert all(torch.equal(g.get_state(), s) for g, s in zip(stacked.generators, before, strict=True))


def test_the_stacked_backward_through_dropout_gives_autograds_gradients():
    # torch.func draws its own dropout masks; autograd through the stacked forward sees the same ones
    members, states = members_with_dropout()
    generators = [torch.Generator().set_state(state) for state in states]
    stacked = StackedMLP(members, DROPOUT, generators)
    x, y = torch.randn(3, 8, 20), torch.randint(0, 5, (3, 8))
    for p in stacked.parameters():
        p.requires_grad_(True)
    log_probs, _ = stacked.log_probs_and_grad(stacked(x), y, 1 / y.shape[1])
    reference = torch.autograd.grad(-log_probs.squeeze(2).mean(dim=1).sum(), stacked.parameters())
    for generator, state in zip(generators, states, strict=True):  # the same masks again
        generator.set_state(state)
    with torch.no_grad():
        _, grad = stacked.log_probs_and_grad(stacked(x), y, 1 / y.shape[1])
        stacked.backward(grad)
    for got, want in zip(stacked.parameters(), reference, strict=True):
        torch.testing.assert_close(got.grad, want, rtol=1e-5, atol=1e-7)


def test_plain_sgd_steps_inside_the_backward_pass_as_torch_optim_sgd_does():
    members = []
    for k in range(3):
        torch.manual_seed(k)
        members.append(mlp((20,), 5, hidden=[9, 6]))
    lrs = [0.1, 0.01, 0.5]
    stacked = StackedMLP(members, [0.0] * 3)
    configs = [OmegaConf.create({"name": "sgd", "lr": lr, "momentum": 0.0, "weight_decay": 0.0, "nesterov": False})
               for lr in lrs]
    optimizer = StackedOptimizer(stacked.parameters(), configs)
    assert optimizer.plain_sgd
    references = [torch.optim.SGD(m.parameters(), lr=lr) for m, lr in zip(members, lrs, strict=True)]
    for _ in range(3):
        x, y = torch.randn(3, 8, 20), torch.randint(0, 5, (3, 8))
        _, grad = stacked.log_probs_and_grad(stacked(x), y, optimizer.lr / y.shape[1])
        stacked.backward(grad, sgd_step=True)
        for k, (member, reference) in enumerate(zip(members, references, strict=True)):
            reference.zero_grad()
            loss_function("logits")(member(x[k]), y[k]).backward()
            reference.step()
    for k, member in enumerate(members):
        for name, tensor in stacked.member_state(k).items():
            torch.testing.assert_close(tensor, member.state_dict()[name], rtol=1e-5, atol=1e-6)


# The parity matrix: each optimizer the stacked engine does, each per-epoch scheduler, dropout (two
# rates in one group); every grid also holds a diverging member. Early stopping below, resume in
# test_fused_resume.py; per-batch schedules and clipping run alone (test below).
@pytest.mark.parametrize("optimizer, lrs, more", [
    ("sgd", "0.1,0.05,1e30", ""),  # plain SGD: its step is in the backward pass
    ("sgd_momentum", "0.1,0.01,1e30", ""), ("adam", "0.01,0.001,1e30", ""), ("adamw", "0.01,0.001,1e30", ""),
    ("rmsprop", "0.001,0.0003,1e30", "optimizer.momentum=0.5"),
    ("sgd", "0.1,0.05,1e30", "scheduler=cosine"),
    ("adam", "0.01,0.001,1e30", "scheduler=step scheduler.step_size=1 scheduler.gamma=0.5"),
    ("sgd_momentum", "0.1,1e30", "model.dropout=0.3,0.5"),
], ids=["sgd", "sgd-momentum", "adam", "adamw", "rmsprop-momentum", "sgd-cosine", "adam-step", "sgd-momentum-dropout"])
def test_a_grid_fused_or_not_writes_the_same_files(tmp_path, optimizer, lrs, more):
    overrides = [*GRID, f"optimizer={optimizer}", f"lr={lrs}", "checkpoint=true", *more.split()]
    basic = job_returns(multirun(main, tmp_path / "basic", *overrides))
    fused = job_returns(multirun(main, tmp_path / "fused", *overrides, "hydra/launcher=fused"))
    n_jobs = 2 * math.prod(len(values.split(",")) for values in [lrs, *more.split()])  # seed=0,1 times each list
    assert len(basic) == len(fused) == n_jobs
    for job_basic, job_fused in zip(basic, fused, strict=True):
        assert job_basic.overrides == job_fused.overrides
        num = job_fused.hydra_cfg.hydra.job.num
        a, b = read_metrics(tmp_path / "basic" / str(num)), read_metrics(tmp_path / "fused" / str(num))
        diverging = job_fused.cfg.lr > 1e20
        assert a["status"] == b["status"] == ("diverged" if diverging else "ok"), num
        assert (tmp_path / "fused" / str(num) / ".hydra" / "overrides.yaml").is_file()
        log_text = (tmp_path / "fused" / str(num) / "train.log").read_text()
        optimizer_class = job_fused.cfg.optimizer._target_.rsplit(".", 1)[-1]
        assert f"; {optimizer_class} (fused, {n_jobs} members)" in log_text  # it really was fused, in one group
        assert optimizer_class in (tmp_path / "basic" / str(num) / "train.log").read_text()
        assert log_text.count("epoch ") >= 1
        if diverging:
            assert math.isnan(job_fused.return_value)
            continue
        assert job_fused.return_value == pytest.approx(job_basic.return_value, abs=ACC_ATOL)
        assert_same_run_within_tolerance(tmp_path / "basic" / str(num), tmp_path / "fused" / str(num), epochs=2)
        checkpoints = [torch.load(tmp_path / kind / str(num) / "checkpoint.pt", weights_only=True)
                       for kind in ("basic", "fused")]
        assert checkpoints[1]["finished"] and checkpoints[1]["best_epoch"] == checkpoints[0]["best_epoch"]
        for weights in ("model", "best_state"):  # the fused member's file has no optimizer state to resume
            assert checkpoints[0][weights].keys() == checkpoints[1][weights].keys()
            for name, tensor in checkpoints[0][weights].items():
                torch.testing.assert_close(checkpoints[1][weights][name], tensor, rtol=LOSS_RTOL, atol=1e-5)


def test_jobs_group_by_shape_and_the_others_run_alone(caplog):
    configs = sweep_configs(
        [*TINY, "lr=0.1", "seed=0"], [*TINY, "lr=0.01", "seed=1", "model.init=normal", "model.init_std=0.1"],
        [*TINY, "lr=0.1", "model.width=32"], [*TINY, "lr=0.01", "model.width=32", "optimizer.momentum=0.9"],
        [*TINY, "optimizer=nadam"], [*TINY, "model.dropout=0.2"], [*TINY, "lr=-1"],
        [*TINY, "lr=0.1", "seed=0"],
    )
    with caplog.at_level("INFO"):
        groups = plan(configs, [task_config(c) for c in configs], max_memory_mb=None, max_members=None)
    # init=normal changes the init op (not fusable with default init); dropout on is another op
    assert groups == [[0, 7], [1], [2, 3], [4], [5], [6]]
    assert re.search(r"fused #2,#3: 2 members, 784-32-10 relu, sgd, batch 64, 2 epochs on cpu, [\d.]+ MB each of "
                     r"budget \d+ MB \(half of .+\), differing in optimizer.momentum, lr", caplog.text)
    assert "alone #4: optimizer._target_=torch.optim.NAdam (the stacked optimizer is torch's" in caplog.text
    assert "alone #6: invalid config: lr=-1.0" in caplog.text


def test_a_group_is_split_to_fit_the_memory_budget():
    configs = sweep_configs(*([*TINY, f"seed={s}"] for s in range(5)))
    two_members_mb = math.ceil(2.5 * member_bytes(configs[0], [784, 256, 10]) / MB)
    task_configs = [task_config(c) for c in configs]
    assert plan(configs, task_configs, max_memory_mb=two_members_mb, max_members=None) == [[0, 1], [2, 3], [4]]
    assert plan(configs, task_configs, max_memory_mb=None, max_members=3) == [[0, 1, 2], [3, 4]]


@pytest.mark.parametrize("bad, message", [
    ("hydra.launcher.max_memory_mb=1", "hydra.launcher.max_memory_mb=1: too small for one member of shape 784-256-10"),
    ("hydra.launcher.max_memory_mb=0", "hydra.launcher.max_memory_mb=0: must be an integer >= 1"),
    ("device=cuda:7" if not torch.cuda.is_available() else "device=nonsense", "device="),
])
def test_bad_input_stops_before_any_job_and_touches_no_finished_job(tmp_path, bad, message):
    multirun(main, tmp_path, *TINY, "epochs=1", "seed=0,1", "hydra/launcher=fused")
    def job_files() -> dict:  # multirun.yaml is Hydra's sweeper's, rewritten before any launcher runs
        return {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in tmp_path.glob("*/**/*") if p.is_file()}

    before = job_files()
    assert len(before) == 2 * 6
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        # resume=false: the grid sweeper would otherwise skip both finished jobs and launch nothing
        multirun(main, tmp_path, *TINY, "epochs=1", "seed=0,1", "hydra/launcher=fused", "hydra.sweeper.resume=false",
                 "hydra.sweeper.extend=true", bad)  # extend: a bad job override makes another grid
    assert job_files() == before


def test_a_job_that_does_not_compose_stops_the_batch_before_any_job_runs(tmp_path):
    # the grid sweeper leaves this check to the fused launcher, which composes the whole batch first
    with pytest.raises(Exception, match="nope"):
        multirun(main, tmp_path, *TINY, "epochs=1", "optimizer=sgd,nope", "hydra/launcher=fused")
    assert not [p for p in tmp_path.iterdir() if p.is_dir()]


def test_a_task_that_is_not_sweeplabs_runs_as_the_basic_launcher_runs_it(tmp_path):
    jobs = job_returns(multirun(lambda cfg: cfg.lr * 2, tmp_path, "lr=0.1,0.01", "hydra/launcher=fused"))
    assert [job.return_value for job in jobs] == [0.2, 0.02]
    assert not (tmp_path / "0" / "metrics.json").exists()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_fused_on_cuda_matches_unfused(tmp_path):
    overrides = [*GRID, "device=cuda", "lr=0.1,0.01"]
    basic = job_returns(multirun(main, tmp_path / "basic", *overrides))
    fused = job_returns(multirun(main, tmp_path / "fused", *overrides, "hydra/launcher=fused"))
    assert len(basic) == len(fused) == 2
    for job_basic, job_fused in zip(basic, fused, strict=True):
        assert read_metrics(Path(job_fused.hydra_cfg.hydra.runtime.output_dir))["device"].startswith("cuda")
        assert job_fused.return_value == pytest.approx(job_basic.return_value, abs=ACC_ATOL)


def test_early_stopping_stops_each_member_where_its_own_run_stops(tmp_path):
    overrides = [*TINY, "model.width=32", "epochs=5", "patience=1", "lr=0.5,0.1,0.003"]
    multirun(main, tmp_path / "basic", *overrides)
    multirun(main, tmp_path / "fused", *overrides, "hydra/launcher=fused")
    epochs = []
    for num in range(3):
        a, b = (read_metrics(tmp_path / kind / str(num)) for kind in ("basic", "fused"))
        assert (b["status"], b["reason"], b["epochs_completed"]) == (a["status"], a["reason"], a["epochs_completed"])
        epochs.append(b["epochs_completed"])
    assert len(set(epochs)) > 1, epochs  # members left the stack at different epochs
