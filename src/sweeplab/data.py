"""Datasets as in-memory tensors: find the IDX files (or generate synthetic data), split, scale.

Source order for an IDX dataset: ``data.root`` (flat, or torchvision's ``<root>/<Name>/raw``), then
``data.system_root`` (Debian's folder), then torchvision's download into ``data.root``.

A process keeps the tensors it loaded (:func:`load_splits`), so a process that runs many jobs (a
multirun, an Optuna worker, a pool worker) reads and scales each dataset once.
"""
from __future__ import annotations

import functools
import json
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from hydra.utils import to_absolute_path
from omegaconf import DictConfig, OmegaConf

from sweeplab.errors import DataError
from sweeplab.idx import read_idx

log = logging.getLogger(__name__)

IMAGE_SIZE = 28 * 28
N_CLASSES = 10
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
TORCHVISION_CLASSES = {"fashion_mnist": "FashionMNIST", "kmnist": "KMNIST", "mnist": "MNIST"}
# How many (data config, device) entries a process keeps: a sweep over datasets or split seeds
# alternates between a few; FashionMNIST's splits take 220 MB as float32.
CACHED_DATASETS = 4
HOW_TO_GET = {
    "fashion_mnist": "install Debian's package (apt-get install dataset-fashion-mnist), or run once online",
    "kmnist": "run once online (torchvision downloads it into data.root)",
    "mnist": "run once online (torchvision downloads it into data.root)",
}


@dataclass
class Splits:
    """Flattened float images (N x 784) and int64 labels, already on the training device."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor


def load_splits(cfg: DictConfig, device: torch.device) -> Splits:
    """Train/validation/test tensors for ``cfg`` (the ``data`` group) on ``device``, loaded once per process.

    The cache key is the whole resolved data config (with ``root`` made absolute) and the device:
    every key that could change the tensors. Callers share the returned tensors, so they must never
    modify them in place (the trainer only reads them: batches are gathered copies).
    """
    settings = OmegaConf.to_container(cfg, resolve=True)
    if "root" in settings:
        settings["root"] = str(absolute_root(settings["root"]))
    hits = _cached_splits.cache_info().hits
    splits = _cached_splits(json.dumps(settings, sort_keys=True), str(device))
    if _cached_splits.cache_info().hits > hits:
        log.info("data: %s, already in memory in this process", cfg.name)
    return splits


@functools.lru_cache(maxsize=CACHED_DATASETS)
def _cached_splits(settings: str, device: str) -> Splits:
    """The splits of one resolved data config (sorted JSON, so equal configs are equal keys)."""
    cfg = OmegaConf.create(json.loads(settings))
    tic = time.perf_counter()
    splits = _read_splits(cfg, torch.device(device))
    log.info("data: %s loaded in %.2fs", cfg.name, time.perf_counter() - tic)
    return splits


def _read_splits(cfg: DictConfig, device: torch.device) -> Splits:
    if cfg.name == "synthetic":
        (train_images, train_labels), (test_images, test_labels) = synthetic_images(cfg)
    else:
        folder = find_idx_folder(cfg)
        log.info("data: %s from %s", cfg.name, folder)
        train_images, train_labels = read_pair(folder, "train")
        test_images, test_labels = read_pair(folder, "test")

    val_size = round(len(train_labels) * cfg.val_fraction)
    order = torch.randperm(len(train_labels), generator=torch.Generator().manual_seed(cfg.split_seed))
    val_idx, train_idx = order[:val_size].numpy(), order[val_size:].numpy()

    def tensors(images: np.ndarray, labels: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.from_numpy(images.reshape(len(images), IMAGE_SIZE)).to(device).float().div_(255)
        if cfg.mean is not None:
            x.sub_(cfg.mean).div_(cfg.std)
        return x, torch.from_numpy(labels.astype(np.int64)).to(device)

    return Splits(
        *tensors(train_images[train_idx], train_labels[train_idx]),
        *tensors(train_images[val_idx], train_labels[val_idx]),
        *tensors(test_images, test_labels),
    )


def read_pair(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Images (N x 28 x 28) and labels (N) of ``split``, checked against each other."""
    images_stem, labels_stem = FILES[split]
    images_path, labels_path = _idx_file(folder, images_stem), _idx_file(folder, labels_stem)
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise DataError(f"{images_path}: expected 28x28 images, found shape {images.shape}")
    if labels.ndim != 1 or len(labels) != len(images):
        raise DataError(f"{labels_path}: {labels.shape} labels for {len(images)} images in {images_path}")
    if labels.max(initial=0) >= N_CLASSES:
        raise DataError(f"{labels_path}: label {labels.max()} outside 0..{N_CLASSES - 1}")
    return images, labels


def _idx_file(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _has_all_files(folder: Path) -> bool:
    return all(_idx_file(folder, stem) for stems in FILES.values() for stem in stems)


def absolute_root(root: str) -> Path:
    """``data.root`` as an absolute path: relative paths resolve against the launch directory."""
    return Path(to_absolute_path(str(Path(root).expanduser())))


def find_idx_folder(cfg: DictConfig) -> Path:
    """The first folder holding all four IDX files of ``cfg.name``, downloading as a last resort."""
    root = absolute_root(cfg.root)
    torchvision_raw = root / TORCHVISION_CLASSES[cfg.name] / "raw"
    looked = []
    for folder, label in ((root, "data.root"), (torchvision_raw, "data.root, torchvision layout")):
        if _has_all_files(folder):
            return folder
        looked.append(f"{folder} ({label}): no IDX files")
    if cfg.system_root is not None:
        if _has_all_files(Path(cfg.system_root)):
            return Path(cfg.system_root)
        looked.append(f"{cfg.system_root} (data.system_root): no IDX files")
    if cfg.download:
        existed = root.exists()
        try:
            download(cfg.name, root)
            return torchvision_raw
        except Exception as exc:  # torchvision raises RuntimeError, URLError, OSError, ...
            if not existed:  # leave no empty folders behind at a mistyped path
                shutil.rmtree(root, ignore_errors=True)
            reason = " ".join(str(exc).split())
            looked.append(f"torchvision download into {root}: failed ({reason})")
    else:
        looked.append("torchvision download: off (data.download=false)")
    raise DataError(
        f"data={cfg.name}: dataset not found. Looked in: {'; '.join(looked)}. "
        f"To get it: {HOW_TO_GET[cfg.name]}, or put {', '.join(s for p in FILES.values() for s in p)} "
        "(optionally .gz) in data.root."
    )


def download(name: str, root: Path) -> None:
    """Let torchvision fetch ``name`` into ``root/<Name>/raw`` (it checks md5 sums)."""
    import torchvision  # only here: it adds a second to every start-up

    log.info("data: downloading %s into %s", name, root)
    dataset_class = getattr(torchvision.datasets, TORCHVISION_CLASSES[name])
    dataset_class(str(root), train=True, download=True)


def synthetic_images(cfg: DictConfig) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Image-like uint8 data: 10 random prototype images plus per-sample Gaussian noise.

    Deterministic in ``cfg.data_seed``; stands in for a real image set in tests and quick trials.
    """
    rng = np.random.default_rng(cfg.data_seed)
    prototypes = rng.uniform(0.0, 1.0, size=(N_CLASSES, 28, 28))

    def sample(n: int) -> tuple[np.ndarray, np.ndarray]:
        labels = rng.integers(0, N_CLASSES, size=n).astype(np.uint8)
        images = prototypes[labels] + cfg.noise * rng.standard_normal((n, 28, 28))
        return (np.clip(images, 0.0, 1.0) * 255).round().astype(np.uint8), labels

    return sample(cfg.n_train), sample(cfg.n_test)
