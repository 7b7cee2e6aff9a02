"""Short runs on the real FashionMNIST from Debian's dataset-fashion-mnist (`make test` installs it)."""
import numpy as np
import pytest

from conftest import FASHION_MNIST, missing_environment
from sweeplab.job.task import run
from sweeplab.jobfiles import read_metrics
from sweeplab.training.data import read_pair

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def debian_data():
    if not (FASHION_MNIST / "train-images-idx3-ubyte.gz").is_file():
        missing_environment(f"{FASHION_MNIST} is missing: apt-get install dataset-fashion-mnist (make data does it)")


def test_the_debian_files_are_fashion_mnist():
    images, labels = read_pair(FASHION_MNIST, "train")
    test_images, test_labels = read_pair(FASHION_MNIST, "test")
    assert images.shape == (60000, 28, 28) and test_images.shape == (10000, 28, 28)
    assert np.bincount(labels).tolist() == [6000] * 10
    assert np.bincount(test_labels).tolist() == [1000] * 10
    assert labels[:3].tolist() == [9, 0, 0]  # ankle boot, T-shirt, T-shirt: the set's well-known first images


def test_seed_001_reaches_its_accuracy(make_cfg, tmp_path):
    """Seed note 001's exact setup (10 epochs of plain SGD): at least 0.84 test accuracy."""
    run(make_cfg("experiment=seed_001"), tmp_path)
    metrics = read_metrics(tmp_path)
    assert metrics["status"] == "ok" and metrics["epochs_completed"] == 10
    assert metrics["test_acc"] >= 0.84
