"""The fused launcher takes layer sizes, its plan line and the memory budget from the data it loads
(sample shape, class count), for any data ``_target_``; and its budget respects the memory this
process may use (MemAvailable, the cgroup limit, RLIMIT_AS)."""
from __future__ import annotations

import re
import resource
import subprocess
import sys
from pathlib import Path

import pytest

import conftest
import sweeplab.fused.engine
import sweeplab.job.task
from conftest import REPO, TINY, sweep_configs
from hydra_plugins.sweeplab_fused_launcher import _groups
from hydra_plugins.sweeplab_fused_launcher._fuse import plan, task_config
from hydra_plugins.sweeplab_fused_launcher._groups import MB, free_memory
from sweeplab.errors import OutOfMemory, is_out_of_memory
from sweeplab.fused.stacked import bytes_per_member
from sweeplab.jobfiles import read_metrics
from sweeplab.training.data import synthetic_images

EXAMPLES = f"hydra.searchpath=[file://{REPO / 'examples' / 'conf'}]"


def square_images(n_train: int, n_test: int, noise: float, data_seed: int):
    """A data ``_target_`` whose samples are 1x28x28 images, not flat rows."""
    return tuple((x.reshape(-1, 1, 28, 28), y) for x, y in synthetic_images(n_train, n_test, noise, data_seed))


def test_the_spirals_example_fuses_with_its_own_shapes_and_budget(tmp_path, capsys):
    conftest.multirun(sweeplab.job.task.main, tmp_path, EXAMPLES, "data=spirals", "model.width=16", "seed=0,1",
                      "epochs=1", "hydra/launcher=fused")
    out = capsys.readouterr().out  # the launcher logs to Hydra's console handler
    line = re.search(r"fused #0,#1: 2 members, (\S+) relu, sgd, batch 256, 1 epochs on \w+, ([\d.]+) MB each", out)
    assert line is not None, out
    assert line.group(1) == "2-16-3"  # 2 features, 16 hidden units, 3 classes: the data's, not FashionMNIST's
    needed = bytes_per_member([2, 16, 3], bias=True, optimizer="sgd", batch_size=256, eval_batch_size=4096)
    assert line.group(2) == f"{needed / MB:.3g}"
    for num in (0, 1):
        log_text = (tmp_path / str(num) / "train.log").read_text()
        assert "Linear(2->16) ReLU Linear(16->3)" in log_text and "(fused, 2 members)" in log_text
        assert '"status": "ok"' in (tmp_path / str(num) / "metrics.json").read_text()


def test_the_budget_is_split_by_the_datas_member_size():
    configs = sweep_configs(*([EXAMPLES, "data=spirals", "model.width=16", f"seed={s}"] for s in range(5)))
    needed = bytes_per_member([2, 16, 3], bias=True, optimizer="sgd", batch_size=256, eval_batch_size=4096)
    budget_mb = 1
    per_group = MB * budget_mb // needed
    assert 1 < per_group < 5
    # FashionMNIST's shape would not fit one member in it: the plan would refuse the budget
    assert bytes_per_member([784, 16, 10], bias=True, optimizer="sgd", batch_size=256, eval_batch_size=4096) > MB
    groups = plan(configs, [task_config(c) for c in configs], max_memory_mb=budget_mb, max_members=None)
    assert [len(g) for g in groups if len(g) > 1] == [per_group] * (5 // per_group)


def test_samples_that_are_not_flat_run_alone_with_the_reason(caplog):
    target = f"data._target_={__name__}.square_images"
    configs = sweep_configs(*([*TINY, target, f"seed={s}"] for s in range(2)))
    with caplog.at_level("INFO"):
        groups = plan(configs, [task_config(c) for c in configs], max_memory_mb=None, max_members=None)
    assert groups == [[0], [1]]
    assert "alone #0: samples of shape (1, 28, 28): the stacked model takes flat samples" in caplog.text


def test_data_that_does_not_load_runs_each_job_alone_to_report_it(caplog, tmp_path):
    configs = sweep_configs(*(["data=mnist", f"data.root={tmp_path}", "data.download=false", f"seed={s}"]
                              for s in range(2)))
    with caplog.at_level("INFO"):
        groups = plan(configs, [task_config(c) for c in configs], max_memory_mb=None, max_members=None)
    assert groups == [[0], [1]]
    assert "alone #1: its data does not load (DataError: data=mnist: dataset not found" in caplog.text


def fake_proc(tmp_path: Path, available_mb: int, vm_size_mb: int = 0) -> dict:
    (tmp_path / "meminfo").write_text(f"MemTotal: 99999999 kB\nMemAvailable: {available_mb * 1024} kB\n")
    (tmp_path / "status").write_text(f"Name: python\nVmSize: {vm_size_mb * 1024} kB\n")
    (tmp_path / "cgroup").mkdir()
    (tmp_path / "self_cgroup").write_text("0::/job\n")
    return {"meminfo": tmp_path / "meminfo", "status": tmp_path / "status", "cgroup_root": tmp_path / "cgroup",
            "own_cgroup": tmp_path / "self_cgroup"}


def no_address_space_limit(monkeypatch) -> None:
    monkeypatch.setattr(resource, "getrlimit", lambda which: (resource.RLIM_INFINITY, resource.RLIM_INFINITY))


def test_without_other_limits_the_budget_is_memavailable(tmp_path, monkeypatch):
    no_address_space_limit(monkeypatch)
    assert free_memory(**fake_proc(tmp_path, available_mb=4000)) == (4000 * MB, "MemAvailable")


def test_a_cgroup_v2_limit_of_the_job_or_a_parent_caps_the_budget(tmp_path, monkeypatch):
    no_address_space_limit(monkeypatch)
    paths = fake_proc(tmp_path, available_mb=4000)
    job = tmp_path / "cgroup" / "job"
    job.mkdir()
    (job / "memory.max").write_text("max\n")  # the job's own cgroup: no limit
    (tmp_path / "cgroup" / "memory.max").write_text(f"{3000 * MB}\n")  # its parent's
    (tmp_path / "cgroup" / "memory.current").write_text(f"{1000 * MB}\n")
    assert free_memory(**paths) == (2000 * MB, "the cgroup memory limit")


def test_a_cgroup_v1_limit_caps_the_budget(tmp_path, monkeypatch):
    no_address_space_limit(monkeypatch)
    paths = fake_proc(tmp_path, available_mb=4000)
    v1 = tmp_path / "cgroup" / "memory"
    v1.mkdir()
    (v1 / "memory.limit_in_bytes").write_text(f"{1500 * MB}\n")
    (v1 / "memory.usage_in_bytes").write_text(f"{500 * MB}\n")
    assert free_memory(**paths) == (1000 * MB, "the cgroup memory limit")
    (v1 / "memory.limit_in_bytes").write_text("9223372036854771712\n")  # v1's "no limit"
    assert free_memory(**paths) == (4000 * MB, "MemAvailable")


def test_ulimit_v_caps_the_budget_by_what_the_process_has_not_mapped_yet(tmp_path, monkeypatch):
    monkeypatch.setattr(resource, "getrlimit", lambda which: (3500 * MB, resource.RLIM_INFINITY))
    paths = fake_proc(tmp_path, available_mb=4000, vm_size_mb=2500)
    assert free_memory(**paths) == (1000 * MB, "RLIMIT_AS (ulimit -v)")


def test_the_plan_line_says_where_the_budget_comes_from(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(_groups, "free_memory", lambda: (200 * MB, "RLIMIT_AS (ulimit -v)"))
    configs = sweep_configs(*([*TINY, f"seed={s}"] for s in range(2)))
    with caplog.at_level("INFO"):
        plan(configs, [task_config(c) for c in configs], max_memory_mb=None, max_members=None)
    assert "of budget 100 MB (half of the 200 MB that RLIMIT_AS (ulimit -v) leaves)" in caplog.text


def test_a_default_budget_too_small_for_one_member_runs_the_jobs_alone(monkeypatch, caplog):
    monkeypatch.setattr(_groups, "free_memory", lambda: (MB, "the cgroup memory limit"))
    configs = sweep_configs(*([*TINY, f"seed={s}"] for s in range(2)))
    with caplog.at_level("INFO"):
        assert plan(configs, [task_config(c) for c in configs], max_memory_mb=None, max_members=None) == [[0], [1]]
    assert re.search(r"alone #0: one member of shape 784-256-10 .* needs [\d.]+ MB, over the budget 0 MB "
                     r"\(half of the 1 MB that the cgroup memory limit leaves\)", caplog.text)


def test_a_group_out_of_memory_says_so_and_names_the_knobs(tmp_path, monkeypatch):
    def no_memory(*args, **kwargs):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't allocate memory: "
                           "you tried to allocate 1073741824 bytes. Error code 12 (Cannot allocate memory)")

    monkeypatch.setattr(sweeplab.fused.engine, "StackedMLP", no_memory)
    with pytest.raises(OutOfMemory, match="hydra.launcher.max_memory_mb or hydra.launcher.max_members"):
        conftest.multirun(sweeplab.job.task.main, tmp_path, *TINY, "seed=0,1", "hydra/launcher=fused")
    for num in (0, 1):
        metrics = read_metrics(tmp_path / str(num))
        assert metrics["status"] == "failed"
        assert metrics["reason"] == (
            "OutOfMemory: out of memory training 2 members as one stacked model; lower hydra.launcher.max_memory_mb "
            "or hydra.launcher.max_members (fewer members per group)")


def test_only_allocation_failures_are_called_out_of_memory():
    try:
        try:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        except RuntimeError as exc:
            raise ValueError("model._target_=sweeplab.training.model.mlp: RuntimeError") from exc
    except ValueError as wrapped:
        assert is_out_of_memory(wrapped)
    assert is_out_of_memory(MemoryError())
    assert not is_out_of_memory(RuntimeError("mat1 and mat2 shapes cannot be multiplied"))


# train.py under an address-space limit (ulimit -v) some hundred MB above what its imports map: the
# grid below then runs out of memory as one stacked model, which a budget from MemAvailable alone forms
UNDER_ULIMIT_V = """
import resource, runpy, sys
import torch, hydra, sweeplab.job.task  # what train.py maps before any job
vm_size = int(next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmSize:"))) * 1024
resource.setrlimit(resource.RLIMIT_AS, (vm_size + int(sys.argv[1]) * 2**20, resource.RLIM_INFINITY))
sys.argv = [sys.argv[2], *sys.argv[3:]]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


@pytest.mark.slow
def test_under_ulimit_v_a_grid_is_split_to_fit_and_every_job_ends_ok(tmp_path):
    headroom_mb, jobs = 700, 18
    needed = bytes_per_member([784, 4096, 10], bias=True, optimizer="sgd", batch_size=64, eval_batch_size=64)
    assert jobs * needed > headroom_mb * MB  # the premise: one group of all ten would not fit
    result = subprocess.run(
        [sys.executable, "-c", UNDER_ULIMIT_V, str(headroom_mb), str(REPO / "train.py"), "-m", *TINY,
         "data.n_train=300", "epochs=1", "eval_batch_size=64", "model.width=4096", f"seed=range(0,{jobs})", "threads=1",
         "hydra/launcher=fused", f"hydra.sweep.dir={tmp_path}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, env=conftest.train_env(OMP_NUM_THREADS="1"))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    groups = re.findall(r"fused #\S+: (\d+) members, .* \(half of the \d+ MB that RLIMIT_AS \(ulimit -v\) leaves\)",
                        result.stdout)
    assert len(groups) > 1 and all(int(n) * needed <= headroom_mb * MB for n in groups), result.stdout
    assert all('"status": "ok"' in (tmp_path / str(num) / "metrics.json").read_text() for num in range(jobs))
