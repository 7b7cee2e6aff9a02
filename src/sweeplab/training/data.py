"""Datasets as in-memory tensors: the ``data`` group's ``_target_`` gives arrays; here they are
checked, split, scaled and moved to the device.

A data ``_target_`` is a function (or class) returning ``(train, test)`` or ``(train, val, test)``,
each an ``(x, y)`` pair of arrays or tensors: x of shape (N, ...) (uint8 is scaled by 1/255 like
ToTensor, anything else is taken as float), y integer class labels 0..n_classes-1. Without a
validation pair, ``val_fraction`` of the training set is held out (fixed by ``split_seed``).
The keys ``val_fraction``, ``split_seed``, ``mean``, ``std``, ``limit`` and ``n_classes`` are ours;
every other key is an argument of the target. The built-in datasets are such functions:
:func:`idx_images` (FashionMNIST, KMNIST, MNIST), :func:`synthetic_images`, and
:func:`torchvision_dataset` turns a torchvision dataset class into tensors once.

Source order for an IDX dataset: ``data.root`` (flat, or torchvision's ``<root>/<Name>/raw``), then
``data.system_root`` (Debian's folder), then torchvision's download into ``data.root``. A ``data.root``
the user gave (not the default ``data``) is the only place looked in (or downloaded into): a folder
there with some of the four files is an error naming the missing ones, never a reason to train on
other data.

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
from typing import Any, Callable, Sequence

import numpy as np
import torch
from hydra.utils import to_absolute_path
from omegaconf import DictConfig, OmegaConf

from sweeplab import targets
from sweeplab.config import DATA_OURS, DataSplitConfig, IdxDataConfig
from sweeplab.errors import DataError
from sweeplab.training.idx import read_idx

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
    """Float inputs (N x 784 for the built-in datasets) and int64 labels, on the training device."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    n_classes: int = N_CLASSES

    @property
    def input_shape(self) -> tuple[int, ...]:
        """One sample's shape, what a model factory is given: (784,) for the built-in datasets."""
        return tuple(self.train_x.shape[1:])


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
        log.info("data: %s, already in memory in this process", label(cfg))
    return splits


@functools.lru_cache(maxsize=CACHED_DATASETS)
def _cached_splits(settings: str, device: str) -> Splits:
    """The splits of one resolved data config (sorted JSON, so equal configs are equal keys)."""
    cfg = OmegaConf.create(json.loads(settings))
    tic = time.perf_counter()
    splits = _read_splits(cfg, torch.device(device))
    log.info("data: %s loaded in %.2fs", label(cfg), time.perf_counter() - tic)
    return splits


def label(cfg: DictConfig) -> str:
    """What to call the dataset in log lines: its name, else its target."""
    return cfg.get("name") or cfg._target_


def _read_splits(cfg: DictConfig, device: torch.device) -> Splits:
    # our keys, with their defaults where a user's data file leaves them out
    ours = OmegaConf.merge(OmegaConf.structured(DataSplitConfig), {k: cfg[k] for k in DATA_OURS if k in cfg})
    pairs = _as_tensor_pairs(targets.build("data", cfg, DATA_OURS), cfg._target_)
    if len(pairs) == 2:
        (train_x, train_y), (test_x, test_y) = pairs
        val_size = round(len(train_y) * ours.val_fraction)
        order = torch.randperm(len(train_y), generator=torch.Generator().manual_seed(ours.split_seed))
        val_idx, train_idx = order[:val_size], order[val_size:]
        pairs = [(train_x[train_idx], train_y[train_idx]), (train_x[val_idx], train_y[val_idx]), (test_x, test_y)]
    n_classes = _check_pairs(pairs, cfg._target_, ours.n_classes)
    if ours.limit is not None:
        pairs = [_subset(x, y, ours.limit, ours.split_seed) for x, y in pairs]

    def scaled(x: torch.Tensor) -> torch.Tensor:
        x = x.to(device).float().div_(255) if x.dtype == torch.uint8 else x.to(device, torch.float32, copy=True)
        if ours.mean is not None:
            x.sub_(ours.mean).div_(ours.std)
        return x

    return Splits(*(t for x, y in pairs for t in (scaled(x), y.to(device, torch.int64))), n_classes=n_classes)


def _as_tensor_pairs(returned: Any, target: str) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The target's (train, test) or (train, val, test) pairs as tensors, or one clear error."""
    expected = "expected (train, test) or (train, val, test), each an (x, y) pair of arrays or tensors"
    if not isinstance(returned, (tuple, list)) or len(returned) not in (2, 3):
        raise DataError(f"data._target_={target}: returned {_kind(returned)}; {expected}")
    pairs = []
    for name, pair in zip(_split_names(len(returned)), returned, strict=True):
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise DataError(f"data._target_={target}: its {name} split is {_kind(pair)}; {expected}")
        try:
            pairs.append((torch.as_tensor(pair[0]), torch.as_tensor(pair[1])))
        except (TypeError, ValueError, RuntimeError) as exc:
            raise DataError(
                f"data._target_={target}: its {name} split is not numeric arrays ({exc}); {expected}") from exc
    return pairs


def _check_pairs(pairs: Sequence[tuple[torch.Tensor, torch.Tensor]], target: str, n_classes: int | None) -> int:
    """Shapes, label types and range across the train, val and test pairs; returns the class count
    (``n_classes``, or the largest label + 1 when it is not given)."""
    where = f"data._target_={target}"
    sample_shape = tuple(pairs[0][0].shape[1:])
    for name, (x, y) in zip(("train", "val", "test"), pairs, strict=True):
        if x.ndim < 2 or len(x) == 0:
            raise DataError(f"{where}: {name} x has shape {tuple(x.shape)}; expected (N, ...) with N >= 1 samples")
        if tuple(x.shape[1:]) != sample_shape:
            raise DataError(f"{where}: {name} x has samples of shape {tuple(x.shape[1:])}, train {sample_shape}; "
                            "expected the same shape in every split")
        if y.shape != (len(x),):
            raise DataError(f"{where}: {name} y has shape {tuple(y.shape)} for {len(x)} samples; expected ({len(x)},)")
        if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
            raise DataError(f"{where}: {name} labels are {y.dtype}; expected integer class indices")
    n_classes = n_classes or 1 + max(int(y.max()) for _, y in pairs)
    for name, (_, y) in zip(("train", "val", "test"), pairs, strict=True):
        low, high = int(y.min()), int(y.max())
        if low < 0 or high >= n_classes:
            raise DataError(f"{where}: {name} labels span {low}..{high}; expected 0..{n_classes - 1} "
                            f"(data.n_classes={n_classes})")
    return n_classes


def _subset(x: torch.Tensor, y: torch.Tensor, limit: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``limit`` <= 1: that fraction of the samples; > 1: that many. A random subset, fixed by ``seed``."""
    keep = max(1, round(len(y) * limit)) if limit <= 1 else min(len(y), int(limit))
    idx = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))[:keep]
    return x[idx], y[idx]


def _split_names(n: int) -> tuple[str, ...]:
    return ("train", "test") if n == 2 else ("train", "val", "test")


def _kind(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return f"a {type(value).__name__} of {len(value)}"
    return f"a {type(value).__name__}"


Arrays = tuple[np.ndarray, np.ndarray]


def idx_images(name: str, root: str, system_root: str | None, download: bool) -> tuple[Arrays, Arrays]:
    """FashionMNIST, KMNIST or MNIST (``name``) from IDX files: flat uint8 images (N x 784) and labels."""
    folder = find_idx_folder(name, root, system_root, download)
    log.info("data: %s from %s", name, folder)
    pairs = []
    for split in ("train", "test"):
        images, labels = read_pair(folder, split)
        pairs.append((images.reshape(len(images), IMAGE_SIZE), labels))
    return pairs[0], pairs[1]


def torchvision_dataset(dataset: Callable[..., Any]) -> tuple[Arrays, Arrays]:
    """A torchvision dataset class (``_partial_``, with its root, download, ...) converted once to
    tensors: ``train=True`` and ``train=False``, every sample through its transform (ToTensor unless
    the config gives one)."""
    from torchvision.transforms import ToTensor  # only here: it adds a second to every start-up

    given = getattr(dataset, "keywords", {})
    transform = {} if given.get("transform") is not None else {"transform": ToTensor()}
    pairs = []
    for train in (True, False):
        samples = dataset(train=train, **transform)
        xs, ys = zip(*(samples[i] for i in range(len(samples))), strict=True)
        pairs.append((torch.stack([torch.as_tensor(x) for x in xs]), torch.as_tensor(ys)))
    return pairs[0], pairs[1]


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
    return not _missing_files(folder)


def _missing_files(folder: Path) -> list[str]:
    return [stem for stems in FILES.values() for stem in stems if _idx_file(folder, stem) is None]


def absolute_root(root: str) -> Path:
    """``data.root`` as an absolute path: relative paths resolve against the launch directory."""
    return Path(to_absolute_path(str(Path(root).expanduser())))


def find_idx_folder(name: str, root: str, system_root: str | None, download_ok: bool) -> Path:
    """The first folder holding all four IDX files of ``name``, downloading as a last resort; a
    ``root`` other than the default is the only place looked in."""
    root = absolute_root(root)
    given = root != absolute_root(IdxDataConfig.root)  # as load_splits passes it: made absolute
    torchvision_raw = root / TORCHVISION_CLASSES[name] / "raw"
    looked = []
    for folder, label in ((root, "data.root"), (torchvision_raw, "data.root, torchvision layout")):
        missing = _missing_files(folder)
        if not missing:
            return folder
        if given and len(missing) < 4:
            raise DataError(
                f"data.root={root}: {folder} holds {4 - len(missing)} of the 4 IDX files of {name}; missing: "
                f"{', '.join(missing)} (optionally .gz). Put them there, or leave data.root at its default")
        looked.append(f"{folder} ({label}): no IDX files")
    if system_root is not None and not given:
        if _has_all_files(Path(system_root)):
            return Path(system_root)
        looked.append(f"{system_root} (data.system_root): no IDX files")
    elif system_root is not None:
        looked.append("data.system_root: not looked in, as data.root is given")
    if download_ok:
        existed = root.exists()
        try:
            download(name, root)
            return torchvision_raw
        except Exception as exc:  # torchvision raises RuntimeError, URLError, OSError, ...
            if not existed:  # leave no empty folders behind at a mistyped path
                shutil.rmtree(root, ignore_errors=True)
            reason = " ".join(str(exc).split())
            looked.append(f"torchvision download into {root}: failed ({reason})")
    else:
        looked.append("torchvision download: off (data.download=false)")
    raise DataError(
        f"data={name}: dataset not found. Looked in: {'; '.join(looked)}. "
        f"To get it: {HOW_TO_GET[name]}, or put {', '.join(s for p in FILES.values() for s in p)} "
        "(optionally .gz) in data.root."
    )


def download(name: str, root: Path) -> None:
    """Let torchvision fetch ``name`` into ``root/<Name>/raw`` (it checks md5 sums)."""
    import torchvision  # only here: it adds a second to every start-up

    log.info("data: downloading %s into %s", name, root)
    dataset_class = getattr(torchvision.datasets, TORCHVISION_CLASSES[name])
    dataset_class(str(root), train=True, download=True)


def synthetic_images(n_train: int, n_test: int, noise: float, data_seed: int) -> tuple[Arrays, Arrays]:
    """Image-like uint8 data (N x 784): 10 random prototype images plus per-sample Gaussian noise.

    Deterministic in ``data_seed``; stands in for a real image set in tests and quick trials.
    """
    rng = np.random.default_rng(data_seed)
    prototypes = rng.uniform(0.0, 1.0, size=(N_CLASSES, 28, 28))

    def sample(n: int) -> tuple[np.ndarray, np.ndarray]:
        labels = rng.integers(0, N_CLASSES, size=n).astype(np.uint8)
        images = prototypes[labels] + noise * rng.standard_normal((n, 28, 28))
        return (np.clip(images, 0.0, 1.0) * 255).round().astype(np.uint8).reshape(n, IMAGE_SIZE), labels

    return sample(n_train), sample(n_test)
