"""Parallel local workers share the GPUs round-robin (device=auto); device= still pins one. The GPU
count is faked: the assignment is arithmetic on the worker's number, whatever the machine has."""
import pytest
import torch

from sweeplab.errors import ConfigError
from sweeplab.job.task import resolve_device
from sweeplab.job.workers import WORKER_VARIABLE, number_worker


@pytest.fixture
def gpus(monkeypatch):
    """Pretend this machine has ``n`` CUDA devices; no worker number set."""
    monkeypatch.delenv(WORKER_VARIABLE, raising=False)

    def fake(n: int) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: n > 0)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: n)
        monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)

    return fake


def as_worker(monkeypatch, n_workers: int, index: int) -> None:
    monkeypatch.setenv(WORKER_VARIABLE, str(number_worker(n_workers, index)))


def test_workers_take_the_gpus_round_robin(gpus, monkeypatch):
    gpus(3)
    devices = []
    for index in range(4):
        monkeypatch.delenv(WORKER_VARIABLE, raising=False)
        as_worker(monkeypatch, 4, index)
        devices.append(resolve_device("auto"))
    assert devices == [torch.device(f"cuda:{n}") for n in (0, 1, 2, 0)]


def test_pool_workers_under_optuna_workers_each_get_a_number_of_their_own(gpus, monkeypatch):
    gpus(4)
    devices = []
    for optuna_worker in range(2):
        for pool_worker in range(2):
            monkeypatch.delenv(WORKER_VARIABLE, raising=False)
            number_worker(2, optuna_worker)
            number_worker(2, pool_worker)
            devices.append(resolve_device("auto"))
    assert devices == [torch.device(f"cuda:{n}") for n in range(4)]


@pytest.mark.parametrize("count", [0, 1])
def test_with_one_gpu_or_none_auto_is_unchanged(gpus, monkeypatch, count):
    gpus(count)
    as_worker(monkeypatch, 2, 1)
    assert resolve_device("auto") == torch.device("cuda" if count else "cpu")


def test_outside_a_worker_auto_is_plain_cuda(gpus):
    gpus(2)
    assert resolve_device("auto") == torch.device("cuda")


def test_an_explicit_device_pins_every_worker(gpus, monkeypatch):
    gpus(2)
    as_worker(monkeypatch, 2, 1)
    assert resolve_device("cuda:0") == torch.device("cuda:0")
    assert resolve_device("cpu") == torch.device("cpu")


def test_a_missing_cuda_device_is_still_refused(gpus, monkeypatch):
    gpus(0)
    as_worker(monkeypatch, 2, 1)
    with pytest.raises(ConfigError, match="device='cuda:1': no CUDA device here"):
        resolve_device("cuda:1")
