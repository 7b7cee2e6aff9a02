"""Trainer speed on real FashionMNIST, as ratios measured in one run on this machine.

Three timings of one epoch (train on the 60 000 training images, then evaluate the 10 000 test
images, as seed note 001 does every epoch), all with the same model, batch size and SGD:

- seed loop: torchvision dataset + ToTensor + DataLoader(shuffle=True), the seed notes' loop;
- sweeplab: ``sweeplab.training.trainer.fit`` on in-memory tensors;
- compute floor: the matrix products one epoch needs (forward; weight gradients; input gradients
  of every layer but the first, which autograd skips), each timed alone at the model's own shapes,
  i.e. the epoch's FLOPs over the matmul rate measured here. Also printed: the floor under the
  usual 6 x samples x parameters convention (which counts the first layer's unneeded input
  gradient too), at the same measured rate.

Rounds interleave one epoch of each so the machine's drift hits all three alike; ratios are
medians of per-round ratios.

    python benchmarks/trainer_speed.py                 # 784-256-10, batch 256, 5 rounds
    python benchmarks/trainer_speed.py --width 64 --batch-size 32
"""
from __future__ import annotations

import argparse
import gzip
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable

import torch
import torchvision
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader

from sweeplab.training.allocator import reuse_freed_memory
from sweeplab.training.data import FILES, Splits, find_idx_folder, read_pair
from sweeplab.training.trainer import fit

EVAL_BATCH_SIZE = 4096


def make_model(width: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(784, width), nn.ReLU(), nn.Linear(width, 10))


def uncompressed_copy(folder: Path, root: Path) -> None:
    """torchvision reads uncompressed files from <root>/FashionMNIST/raw without an md5 check."""
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for stem in (s for pair in FILES.values() for s in pair):
        source = folder / stem if (folder / stem).exists() else folder / f"{stem}.gz"
        opener = gzip.open if source.suffix == ".gz" else open
        with opener(source, "rb") as src, open(raw / stem, "wb") as dst:
            shutil.copyfileobj(src, dst)


def seed_loop(root: Path, width: int, batch_size: int) -> Callable[[], None]:
    """One epoch of the seed notes' loop: ToTensor per sample, DataLoader batches, test every epoch."""
    to_tensor = torchvision.transforms.ToTensor()
    train = torchvision.datasets.FashionMNIST(str(root), train=True, transform=to_tensor)
    test = torchvision.datasets.FashionMNIST(str(root), train=False, transform=to_tensor)
    train_iter = DataLoader(train, batch_size=batch_size, shuffle=True)
    test_iter = DataLoader(test, batch_size=batch_size)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), make_model(width))
    trainer = torch.optim.SGD(net.parameters(), lr=0.1)

    def epoch() -> None:
        net.train()
        for X, y in train_iter:
            loss = F.cross_entropy(net(X), y)
            trainer.zero_grad()
            loss.backward()
            trainer.step()
        net.eval()
        with torch.no_grad():
            for X, y in test_iter:
                net(X).argmax(1).eq(y).sum().item()

    return epoch


def sweeplab_loop(splits: Splits, width: int, batch_size: int) -> Callable[[], None]:
    """One epoch of ``sweeplab.training.trainer.fit``, continuing the same model each call."""
    torch.manual_seed(0)
    net = make_model(width)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)

    def epoch() -> None:
        fit(net, optimizer, F.cross_entropy, splits, epochs=1, batch_size=batch_size,
            drop_last=False, seed=0, eval_batch_size=EVAL_BATCH_SIZE)

    return epoch


def timed(fn, repeats: int) -> float:
    """Median seconds of ``fn()`` over ``repeats`` runs, after two warm-up runs."""
    fn(), fn()
    times = []
    for _ in range(repeats):
        tic = time.perf_counter()
        fn()
        times.append(time.perf_counter() - tic)
    return statistics.median(times)


def compute_floor(width: int, batch_size: int, n_train: int, n_eval: int) -> tuple[int, Callable[[], float]]:
    """FLOPs of one epoch's matrix products, and a function that times those products alone."""
    shapes = [(784, width), (width, 10)]  # (fan_in, fan_out) per Linear

    def products(batch: int, backward: bool) -> list[tuple[torch.Tensor, torch.Tensor]]:
        pairs = []
        for layer, (fan_in, fan_out) in enumerate(shapes):
            x, w, grad = torch.rand(batch, fan_in), torch.rand(fan_out, fan_in), torch.rand(batch, fan_out)
            pairs.append((x, w.t()))  # forward: x @ W^T
            if backward:
                pairs.append((grad.t(), x))  # weight gradient: grad^T @ x
                if layer > 0:
                    pairs.append((grad, w))  # input gradient: grad @ W
        return pairs

    full, last = divmod(n_train, batch_size)
    eval_full, eval_last = divmod(n_eval, EVAL_BATCH_SIZE)
    parts = [(products(batch_size, True), full), (products(EVAL_BATCH_SIZE, False), eval_full)]
    parts += [(products(last, True), 1)] if last else []
    parts += [(products(eval_last, False), 1)] if eval_last else []
    flops = sum(count * 2 * a.shape[0] * a.shape[1] * b.shape[1] for pairs, count in parts for a, b in pairs)

    def epoch_seconds() -> float:
        """Each distinct step's products timed over 20 repeats (median), times how often the epoch runs it."""
        return sum(count * timed(lambda pairs=pairs: [torch.mm(a, b) for a, b in pairs], repeats=20)
                   for pairs, count in parts)

    return flops, epoch_seconds


def seconds_of(fn: Callable[[], None]) -> float:
    tic = time.perf_counter()
    fn()
    return time.perf_counter() - tic


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=5, help="rounds of (seed epoch, sweeplab epoch, floor)")
    args = parser.parse_args()
    # sweeplab.job.task does this before training; doing it here too speeds up all three loops alike
    reuse_freed_memory()

    folder = find_idx_folder("fashion_mnist", "data", "/usr/share/datasets/fashion-mnist", download_ok=False)
    train_images, train_labels = read_pair(folder, "train")
    test_images, test_labels = read_pair(folder, "test")

    def tensors(images, labels):
        return torch.from_numpy(images.reshape(len(images), -1)).float().div_(255), torch.from_numpy(labels).long()

    train_x, train_y = tensors(train_images, train_labels)
    test_x, test_y = tensors(test_images, test_labels)
    # train on all 60 000, evaluate the 10 000 test images every epoch: the same work as the seed loop
    splits = Splits(train_x, train_y, test_x, test_y, test_x, test_y)
    print(f"784-{args.width}-10 ReLU, SGD, batch {args.batch_size}, {torch.get_num_threads()} threads, "
          f"data from {folder}; {args.rounds} interleaved rounds after a warm-up round")

    with tempfile.TemporaryDirectory() as root:
        uncompressed_copy(folder, Path(root))
        seed_epoch = seed_loop(Path(root), args.width, args.batch_size)
        ours_epoch = sweeplab_loop(splits, args.width, args.batch_size)
        floor_flops, floor_epoch = compute_floor(args.width, args.batch_size, len(train_y), len(test_y))
        n_params = sum(p.numel() for p in make_model(args.width).parameters())
        convention_flops = 6 * len(train_y) * n_params + 2 * len(test_y) * n_params
        rows = []
        for round_ in range(args.rounds + 1):
            row = (seconds_of(seed_epoch), seconds_of(ours_epoch), floor_epoch())
            if round_ > 0:  # the first round warms up allocators and thread pools
                rows.append(row)
                print(f"  round {round_}: seed loop {row[0]:.3f}s  sweeplab {row[1]:.3f}s  floor {row[2]:.3f}s")

    seed, ours, floor = (statistics.median(column) for column in zip(*rows, strict=True))
    speedup = statistics.median(s / o for s, o, _ in rows)
    over_floor = statistics.median(o / f for _, o, f in rows)
    # same measured rate, more FLOPs: the convention's floor is the needed floor scaled by the FLOP ratio
    over_convention = over_floor * floor_flops / convention_flops
    rate = floor_flops / floor / 1e9
    print(f"\nmedian s/epoch: seed loop {seed:.3f}, sweeplab {ours:.3f}, compute floor {floor:.3f}")
    print(f"matmul rate at the model's shapes: {rate:.0f} GFLOP/s; FLOPs per epoch: {floor_flops / 1e9:.1f} G "
          f"needed, {convention_flops / 1e9:.1f} G by the 6*N*P convention")
    print(f"speed-up over the seed loop:        {speedup:5.2f}x   (target >= 8x)")
    print(f"sweeplab / floor (needed FLOPs):    {over_floor:5.2f}x   (target <= 1.3x)")
    print(f"sweeplab / floor (6*N*P FLOPs):     {over_convention:5.2f}x")


if __name__ == "__main__":
    main()
