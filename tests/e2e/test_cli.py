"""train.py as users type it, on small synthetic data (real FashionMNIST: test_fashion_mnist.py; grids in-process:
test_multirun.py). A subprocess where the process is the point (what it imports, a terminal), else in-process."""
import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios

import numpy as np
import pytest

from conftest import REPO, TINY, run_train, train_env, write_idx_dataset
from sweeplab.jobfiles import read_metrics
from sweeplab.training.idx import write_idx

pytestmark = pytest.mark.slow


def sweep_jobs(cwd):
    """The job dirs of the only sweep dir under cwd/outputs/sweeps, by job number."""
    (sweep,) = (cwd / "outputs" / "sweeps").iterdir()
    return sorted((p for p in sweep.iterdir() if p.is_dir()), key=lambda p: int(p.name))


def test_single_run_prints_plain_epoch_lines_and_final_accuracy_and_writes_job_files(tmp_path):
    result = run_train(*TINY, cwd=tmp_path, env=train_env(PYTHONPROFILEIMPORTTIME="1"))  # python -X importtime
    assert result.returncode == 0, result.stderr
    # without a logger neither tracker's package is imported
    imported = {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in result.stderr.splitlines()
                if line.startswith("import time:")}
    assert "torch" in imported and not imported & {"mlflow", "tensorboard"}
    # plain lines: the output is not a terminal
    assert "\r" not in result.stdout + result.stderr
    assert "it/s" not in result.stderr and "batch/s" not in result.stderr
    assert "epoch 1/2" in result.stdout and "epoch 2/2" in result.stdout
    assert "test_acc" in result.stdout and "best val_acc" in result.stdout
    (job,) = (tmp_path / "outputs" / "runs").iterdir()
    for name in (".hydra/config.yaml", ".hydra/overrides.yaml", "history.csv", "metrics.json", "train.log"):
        assert (job / name).is_file(), name
    assert "epoch 2/2" in (job / "train.log").read_text()
    assert read_metrics(job)["status"] == "ok"


BAD_INPUTS = [
    (["lr=-1"], ["lr=-1.0", "must be a number > 0"]),
    (["lr=abc"], ["lr=abc", "could not be converted to Float"]),
    # every problem the validation finds, in one run (test_config.py has each message)
    (["batch_size=0", "epochs=-1", "model.width=0", "lr=inf", "+lrr=0.1", "data.root=/etc/passwd"],
     ["batch_size=0: must be >= 1", "epochs=-1: must be >= 1", "model.width=0: must be >= 1",
      "lr=inf: must be a finite number", "lrr=0.1: unknown key (nearest known keys: lr)",
      "data.root='/etc/passwd': exists but is not a folder"]),
    (["activation=swishy"], ["activation/swishy", "Available options in 'activation'", "relu"]),
    (["optimizer=foo"], ["optimizer/foo", "Available options in 'optimizer'", "adam"]),
    (["data=nope"], ["data/nope", "Available options in 'data'", "fashion_mnist"]),
    (["lrr=0.1"], ["'lrr'", "+lrr=0.1", "TrainConfig"]),
    (["data.root=/nonexistent", "data.system_root=null", "data.download=false"],
     ["data=fashion_mnist: dataset not found", "/nonexistent (data.root)", "apt-get install dataset-fashion-mnist"]),
]


@pytest.mark.parametrize("args, expected", BAD_INPUTS, ids=[" ".join(a) for a, _ in BAD_INPUTS])
def test_bad_input_ends_before_training_with_a_clear_message(tmp_path, args, expected, train_cli):
    result = train_cli(*args, cwd=tmp_path)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    for text in expected:
        assert text in result.stderr, text
    assert "Traceback" not in output
    assert "epoch 1/" not in output


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_corrupt_idx_file_names_the_file(tmp_path, damage, train_cli):
    write_idx_dataset(tmp_path / "data", gz=True)
    target = tmp_path / "data" / "train-images-idx3-ubyte.gz"
    target.write_bytes(target.read_bytes()[:200] if damage == "truncate" else b"\x1f\x8bnot really")
    result = train_cli(f"data.root={tmp_path / 'data'}", "data.download=false", cwd=tmp_path)
    assert result.returncode != 0
    assert f"{target}: cannot read it" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_wrong_sized_idx_file_names_the_file(tmp_path, train_cli):
    write_idx_dataset(tmp_path / "data")
    write_idx(tmp_path / "data" / "t10k-images-idx3-ubyte", np.zeros((40, 14, 14), dtype=np.uint8))
    result = train_cli(f"data.root={tmp_path / 'data'}", cwd=tmp_path)
    assert result.returncode != 0
    assert "t10k-images-idx3-ubyte: expected 28x28 images, found shape (40, 14, 14)" in result.stderr


def test_full_error_shows_the_traceback(tmp_path, train_cli):
    result = train_cli("lr=-1", cwd=tmp_path, env={"HYDRA_FULL_ERROR": "1"})
    assert result.returncode != 0 and "Traceback" in result.stderr


def test_in_a_multirun_a_failing_job_is_recorded_and_the_others_run(tmp_path, train_cli):
    result = train_cli("-m", "lr=0.1,-1,0.01", *TINY, cwd=tmp_path)
    assert result.returncode != 0
    assert "lr=-1.0: must be a number > 0" in result.stderr
    statuses = [read_metrics(job)["status"] for job in sweep_jobs(tmp_path)]
    assert statuses == ["ok", "failed", "ok"]
    assert "must be a number > 0" in read_metrics(sweep_jobs(tmp_path)[1])["reason"]


def test_progress_bars_on_a_terminal(tmp_path):
    """A real pseudo-terminal: tqdm draws bars over epochs and batches."""
    main, child = pty.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))  # 100 columns, like a window
    proc = subprocess.Popen([sys.executable, str(REPO / "train.py"), *TINY], cwd=tmp_path,
                            stdin=child, stdout=child, stderr=child, close_fds=True)
    os.close(child)
    chunks = []
    while True:
        try:
            chunk = os.read(main, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    assert proc.wait(timeout=120) == 0
    screen = b"".join(chunks).decode(errors="replace")
    assert "epochs: 100%" in screen and "2/2" in screen
    assert "batches:" in screen
    assert "epoch 2/2" in screen  # the epoch lines still appear above the bars
