"""Small models and data shared by the training tests and the torchrun worker."""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

from reactivate import AHAF
from reactivate.data import DatasetSplits, TensorImages, load_dataset

__all__ = ["TinyNet", "digits_subset", "save_splits", "load_splits", "differing_tensors", "make_tiny", "tiny_splits"]


class TinyNet(nn.Module):
    """A two-layer CNN for 1x16x16 images: conv, activation, 4x4 max-pool, linear, activation, linear.

    Args:
        adaptive: use AHAF modules (starting as ReLU) instead of ``nn.ReLU``.
        dropout: dropout probability before the last layer.
    """

    def __init__(self, adaptive: bool = False, dropout: float = 0.0, num_classes: int = 10) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 6, kernel_size=3, padding=1)
        self.act1 = AHAF("relu") if adaptive else nn.ReLU()
        self.pool = nn.MaxPool2d(4)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(6 * 4 * 4, 32)
        self.act2 = AHAF("relu") if adaptive else nn.ReLU()
        self.drop = nn.Dropout(dropout)
        self.fc2 = nn.Linear(32, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.act1(self.conv(x)))
        x = self.act2(self.fc1(self.flatten(x)))
        return self.fc2(self.drop(x))


def make_tiny(seed: int = 0, **kwargs) -> TinyNet:
    """Build a TinyNet whose initial weights depend only on ``seed``."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return TinyNet(**kwargs)


@functools.lru_cache(maxsize=None)
def digits_subset(train: int = 128, test: int = 64) -> DatasetSplits:
    """Stratified subsets of scikit-learn's digits, average-pooled to 1x16x16, loaded once per process."""
    data = load_dataset("digits", train_subset=train, test_subset=test, seed=0)

    def shrink(split: TensorImages) -> TensorImages:
        return TensorImages(F.avg_pool2d(split.images, 2), split.labels)

    return DatasetSplits(
        data.name, shrink(data.train), shrink(data.test), data.num_classes, (1, 16, 16), data.classes
    )


def tiny_splits(train: int = 40, test: int = 20, seed: int = 0) -> DatasetSplits:
    """Random 1x16x16 images with random labels, for tests that need no learnable signal."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand(train + test, 1, 16, 16, generator=generator)
    labels = torch.randint(0, 10, (train + test,), generator=generator)
    return DatasetSplits(
        "random",
        TensorImages(images[:train], labels[:train]),
        TensorImages(images[train:], labels[train:]),
        10,
        (1, 16, 16),
        tuple(str(i) for i in range(10)),
    )


def save_splits(data: DatasetSplits, path) -> None:
    """Store the tensors of ``data`` so another process can rebuild it without scikit-learn."""
    torch.save(
        {
            "train": (data.train.images, data.train.labels),
            "test": (data.test.images, data.test.labels),
            "num_classes": data.num_classes,
            "image_shape": tuple(data.image_shape),
            "classes": tuple(data.classes),
        },
        path,
    )


def load_splits(path) -> DatasetSplits:
    """Rebuild a dataset written by :func:`save_splits`."""
    stored = torch.load(path, weights_only=True)
    return DatasetSplits(
        "stored",
        TensorImages(*stored["train"]),
        TensorImages(*stored["test"]),
        stored["num_classes"],
        tuple(stored["image_shape"]),
        tuple(stored["classes"]),
    )


def differing_tensors(first: dict[str, torch.Tensor], second: dict[str, torch.Tensor]) -> list[str]:
    """Names of the entries whose tensors are not bit-identical (or missing from one side)."""
    names = sorted(set(first) | set(second))
    return [name for name in names if name not in first or name not in second or not torch.equal(first[name], second[name])]
