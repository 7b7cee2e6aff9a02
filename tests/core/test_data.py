from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest
import torch
import torchvision.datasets.mnist
from omegaconf import OmegaConf
from PIL import Image
from torchvision.transforms import ToTensor

import sweeplab.job.task
from conftest import REPO, TINY, write_idx_dataset
from sweeplab.errors import DataError
from sweeplab.training.data import find_idx_folder, load_splits, read_pair
from sweeplab.training.idx import read_idx, write_idx


def idx_cfg(root, name="fashion_mnist", system_root=None, download=False, **extra):
    return OmegaConf.create({
        "_target_": "sweeplab.training.data.idx_images", "name": name, "root": str(root),
        "system_root": None if system_root is None else str(system_root),
        "download": download, "val_fraction": 0.1, "split_seed": 0, "mean": None, "std": None, **extra,
    })


def find(cfg):
    return find_idx_folder(cfg.name, cfg.root, cfg.system_root, cfg.download)


def test_root_wins_over_system_root(tmp_path):
    write_idx_dataset(tmp_path / "mine")
    write_idx_dataset(tmp_path / "system")
    assert find(idx_cfg(tmp_path / "mine", system_root=tmp_path / "system")) == tmp_path / "mine"


def test_torchvision_layout_under_root(tmp_path):
    write_idx_dataset(tmp_path / "KMNIST" / "raw")
    assert find(idx_cfg(tmp_path, name="kmnist")) == tmp_path / "KMNIST" / "raw"


def test_system_root_is_used_when_root_is_left_at_its_default_and_empty(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    write_idx_dataset(tmp_path / "system", gz=True)
    assert find(idx_cfg("data", system_root=tmp_path / "system")) == tmp_path / "system"


@pytest.mark.parametrize("files", [0, 3])
def test_a_given_root_without_a_complete_dataset_ends_naming_what_is_missing_never_falling_back(tmp_path, files):
    write_idx_dataset(tmp_path / "system")
    write_idx_dataset(tmp_path / "mine")
    kept = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte"][:files]
    for path in (tmp_path / "mine").iterdir():
        if path.name not in kept:
            path.unlink()
    with pytest.raises(DataError) as info:
        find(idx_cfg(tmp_path / "mine", system_root=tmp_path / "system"))
    message = str(info.value)
    assert "\n" not in message and str(tmp_path / "system") not in message
    if files:
        assert message.startswith(f"data.root={tmp_path / 'mine'}: ") and "holds 3 of the 4 IDX files" in message
        assert message.count("missing: t10k-labels-idx1-ubyte") == 1
    else:
        assert f"{tmp_path / 'mine'} (data.root): no IDX files" in message
        assert "data.system_root: not looked in, as data.root is given" in message


def test_missing_dataset_lists_every_place_and_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = idx_cfg("data", system_root=tmp_path / "also-missing")
    with pytest.raises(DataError) as info:
        find(cfg)
    message = str(info.value)
    assert "data=fashion_mnist: dataset not found" in message
    for place in ("data (data.root)", "FashionMNIST/raw", "also-missing (data.system_root)",
                  "download: off (data.download=false)", "apt-get install dataset-fashion-mnist"):
        assert place in message
    assert "\n" not in message


@pytest.fixture
def torchvision_fetch(monkeypatch):
    """torchvision's download code without the network: each file it fetches comes from ``serve``
    (a tiny generated IDX file) or, with ``offline`` set, fails as an unreachable server does."""
    state = {"offline": False, "fetched": []}

    def serve(url, download_root, filename, md5):
        state["fetched"].append(url)
        if state["offline"]:
            raise URLError("[Errno -3] Temporary failure in name resolution")
        n = 120 if filename.startswith("train") else 40
        rng = np.random.default_rng(0)
        data = rng.integers(0, 256, size=(n, 28, 28)) if "images" in filename else rng.integers(0, 10, size=n)
        write_idx(Path(download_root) / filename.removesuffix(".gz"), data.astype(np.uint8))

    monkeypatch.setattr(torchvision.datasets.mnist, "download_and_extract_archive", serve)
    return state


def test_download_is_the_last_resort_and_lands_in_torchvision_layout(tmp_path, torchvision_fetch):
    folder = find(idx_cfg(tmp_path / "fresh", name="kmnist", download=True))
    assert folder == tmp_path / "fresh" / "KMNIST" / "raw"
    assert len(torchvision_fetch["fetched"]) == 4
    images, labels = read_pair(folder, "train")
    assert images.shape == (120, 28, 28) and len(labels) == 120


def test_failed_download_is_reported_and_leaves_no_folder(tmp_path, torchvision_fetch):
    torchvision_fetch["offline"] = True
    root = tmp_path / "fresh"
    with pytest.raises(DataError, match=r"torchvision download into .*fresh: failed \(.+\)"):
        find(idx_cfg(root, name="mnist", download=True))
    assert not root.exists()


@pytest.mark.parametrize("name", ["fashion_mnist", "kmnist", "mnist"])
def test_each_dataset_loads_from_generated_files(tmp_path, name):
    write_idx_dataset(tmp_path / "root", n_train=100, n_test=30)
    splits = load_splits(idx_cfg(tmp_path / "root", name=name), torch.device("cpu"))
    assert (len(splits.train_y), len(splits.val_y), len(splits.test_y)) == (90, 10, 30)
    assert splits.train_x.shape == (90, 784) and splits.train_x.dtype == torch.float32
    assert splits.train_y.dtype == torch.int64


def test_pixels_equal_to_tensor(tmp_path):
    write_idx_dataset(tmp_path, n_train=20, n_test=5)
    images, _ = read_pair(tmp_path, "test")
    splits = load_splits(idx_cfg(tmp_path), torch.device("cpu"))
    expected = torch.stack([ToTensor()(Image.fromarray(image, mode="L")).flatten() for image in images])
    assert torch.equal(splits.test_x, expected)


def test_normalisation_when_configured(tmp_path):
    write_idx_dataset(tmp_path, n_train=20, n_test=5)
    plain = load_splits(idx_cfg(tmp_path), torch.device("cpu"))
    normed = load_splits(idx_cfg(tmp_path, mean=0.5, std=0.25), torch.device("cpu"))
    torch.testing.assert_close(normed.test_x, (plain.test_x - 0.5) / 0.25)


def test_validation_split_is_fixed_by_split_seed_and_disjoint(tmp_path):
    write_idx_dataset(tmp_path, n_train=200, n_test=10)
    first = load_splits(idx_cfg(tmp_path), torch.device("cpu"))
    again = load_splits(idx_cfg(tmp_path), torch.device("cpu"))
    other = load_splits(idx_cfg(tmp_path, split_seed=1), torch.device("cpu"))
    assert torch.equal(first.val_x, again.val_x)
    assert not torch.equal(first.val_x, other.val_x)
    train_rows = {tuple(row.tolist()) for row in first.train_x}
    assert not any(tuple(row.tolist()) in train_rows for row in first.val_x)
    assert len(first.val_y) == 20


def test_label_count_mismatch_names_both_files(tmp_path):
    write_idx_dataset(tmp_path, n_train=20, n_test=5)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(19, dtype=np.uint8))
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte: \(19,\) labels for 20 images"):
        read_pair(tmp_path, "train")


def test_label_out_of_range(tmp_path):
    write_idx_dataset(tmp_path, n_train=20, n_test=5)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.full(5, 10, dtype=np.uint8))
    with pytest.raises(DataError, match="label 10 outside 0..9"):
        read_pair(tmp_path, "test")


def test_synthetic_is_deterministic_and_balanced_enough(make_cfg):
    cfg = make_cfg("data=synthetic", "data.n_train=500", "data.n_test=100").data
    a, b = load_splits(cfg, torch.device("cpu")), load_splits(cfg, torch.device("cpu"))
    assert torch.equal(a.train_x, b.train_x) and torch.equal(a.test_y, b.test_y)
    assert len(torch.unique(a.train_y)) == 10
    assert a.train_x.min() >= 0 and a.train_x.max() <= 1


# ---------------------------------------------------------------- loaded once per process


@pytest.fixture
def counted_reads(monkeypatch):
    """How many IDX files load_splits has read since the test started."""
    reads = []

    def counting(path):
        reads.append(path)
        return read_idx(path)

    monkeypatch.setattr("sweeplab.training.data.read_idx", counting)
    return reads


def test_same_config_gives_the_same_tensors_without_reading_files_again(tmp_path, counted_reads):
    write_idx_dataset(tmp_path, n_train=50, n_test=10)
    first = load_splits(idx_cfg(tmp_path), torch.device("cpu"))
    assert len(counted_reads) == 4
    again = load_splits(idx_cfg(tmp_path), torch.device("cpu"))
    assert again.train_x is first.train_x and again.test_y is first.test_y
    assert len(counted_reads) == 4


@pytest.mark.parametrize("change", [{"val_fraction": 0.2}, {"split_seed": 1}, {"mean": 0.5, "std": 0.25}])
def test_a_changed_key_gives_new_tensors(tmp_path, counted_reads, change):
    write_idx_dataset(tmp_path, n_train=50, n_test=10)
    first = load_splits(idx_cfg(tmp_path), torch.device("cpu"))
    changed = load_splits(idx_cfg(tmp_path, **change), torch.device("cpu"))
    assert changed.train_x is not first.train_x and not torch.equal(changed.val_x, first.val_x)
    assert len(counted_reads) == 8


def test_root_and_system_root_are_part_of_the_key(tmp_path, counted_reads, monkeypatch):
    monkeypatch.chdir(tmp_path)  # data.root left at its default, "data": empty, so system_root serves
    write_idx_dataset(tmp_path / "a", seed=0)
    write_idx_dataset(tmp_path / "b", seed=1)
    a = load_splits(idx_cfg(tmp_path / "a"), torch.device("cpu"))
    b = load_splits(idx_cfg("data", system_root=tmp_path / "b"), torch.device("cpu"))
    assert not torch.equal(a.test_x, b.test_x)


def test_synthetic_parameters_are_part_of_the_key(make_cfg):
    small = load_splits(make_cfg("data=synthetic", "data.n_train=100").data, torch.device("cpu"))
    noisier = load_splits(make_cfg("data=synthetic", "data.n_train=100", "data.noise=0.9").data, torch.device("cpu"))
    other_seed = load_splits(make_cfg("data=synthetic", "data.n_train=100", "data.data_seed=1").data,
                             torch.device("cpu"))
    assert not torch.equal(small.train_x, noisier.train_x)
    assert not torch.equal(small.train_x, other_seed.train_x)


def test_a_multirun_in_one_process_loads_the_data_once(hydra_sweep_runner, tmp_path):
    """Hydra's basic launcher runs every job in this process: only the first job reads the data."""
    overrides = ["seed=0,1,2", *TINY, "data.n_train=613"]  # a data config no other test loads
    with hydra_sweep_runner(calling_file=str(REPO / "train.py"), calling_module=None,
                            task_function=sweeplab.job.task.main, config_path="conf", config_name="train",
                            overrides=overrides, temp_dir=tmp_path):
        logs = [(tmp_path / job / "train.log").read_text() for job in "012"]
    assert [log.count("data: sweeplab.training.data.synthetic_images loaded in") for log in logs] == [1, 0, 0]
    reused = "data: sweeplab.training.data.synthetic_images, already in memory in this process"
    assert [log.count(reused) for log in logs] == [0, 1, 1]
