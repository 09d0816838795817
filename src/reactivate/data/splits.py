"""Whole-tensor image datasets: a labelled image set and a train/test pair.

The images stay in one float tensor, so moving a dataset to the training
device is one copy and a training loop slices batches from device memory
with no DataLoader workers.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

__all__ = ["DatasetError", "TensorImages", "DatasetSplits", "check_subset_size"]


class DatasetError(ValueError):
    """A dataset is missing, corrupt or unknown, or a request on it is invalid."""


def check_subset_size(name: str, n: object, available: int) -> int:
    """Check that ``n`` is an int in ``1..available``; ``name`` is quoted in the error."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise DatasetError(f"{name}={n!r} is invalid; give a positive number of images")
    if n > available:
        raise DatasetError(f"{name}={n} is larger than the {available} images available; give at most {available}")
    return n


@dataclass(frozen=True, eq=False)
class TensorImages:
    """Labelled images held as two tensors.

    Args:
        images: float tensor of shape (N, C, H, W) with values in [0, 1].
        labels: int64 tensor of shape (N,) with class indices.

    Raises:
        DatasetError: the shapes or dtypes do not match this layout.

    .. note::
        The value range is not checked, because that needs a full pass over
        the images; the loaders of this package produce values in [0, 1].
    """

    images: torch.Tensor
    labels: torch.Tensor

    def __post_init__(self) -> None:
        if not isinstance(self.images, torch.Tensor) or self.images.dim() != 4:
            shape = tuple(self.images.shape) if isinstance(self.images, torch.Tensor) else type(self.images).__name__
            raise DatasetError(f"images must be a tensor of shape (N, C, H, W), got {shape}")
        if not self.images.is_floating_point():
            raise DatasetError(f"images must be a floating-point tensor, got {self.images.dtype}")
        if not isinstance(self.labels, torch.Tensor) or self.labels.dtype != torch.int64 or self.labels.dim() != 1:
            raise DatasetError("labels must be an int64 tensor of shape (N,)")
        if self.labels.shape[0] != self.images.shape[0]:
            raise DatasetError(
                f"images and labels differ in length: {self.images.shape[0]} images, {self.labels.shape[0]} labels"
            )
        if self.images.device != self.labels.device:
            raise DatasetError(f"images are on {self.images.device} but labels on {self.labels.device}")

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def device(self) -> torch.device:
        return self.images.device

    def to(self, device: torch.device | str, non_blocking: bool = False) -> "TensorImages":
        """Return a new :class:`TensorImages` on ``device``; tensors already there are shared, not copied."""
        return TensorImages(
            self.images.to(device, non_blocking=non_blocking),
            self.labels.to(device, non_blocking=non_blocking),
        )

    def subset(self, n: int, seed: int = 0, *, stratify: bool = True) -> "TensorImages":
        """Pick ``n`` images at random, the same ones for the same seed.

        Args:
            n: number of images, from 1 to ``len(self)``.
            seed: seed of the random choice. Default: 0.
            stratify: keep the class proportions: class ``c`` gets its share
                ``n * count_c / len(self)``, rounded by largest remainder so
                the shares add up to ``n``. Default: True.

        Returns:
            A new :class:`TensorImages` with the chosen images in their
            original order.

        Raises:
            DatasetError: ``n`` is not an integer between 1 and ``len(self)``.
        """
        total = len(self)
        n = check_subset_size("n", n, total)
        if n == total:
            return self
        # Random draws happen on the CPU, so a seed picks the same images on
        # every device.
        generator = torch.Generator().manual_seed(seed)
        order = torch.randperm(total, generator=generator)
        labels = self.labels.cpu()
        if stratify:
            chosen = _stratified_pick(labels, order, n, generator)
        else:
            chosen = order[:n]
        chosen = chosen.sort().values.to(self.device)
        return TensorImages(self.images[chosen], self.labels[chosen])


def _stratified_pick(labels: torch.Tensor, order: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
    """Take per-class quotas from a random order of the indices.

    Written by hand (scikit-learn's stratified splitters reject subsets with
    fewer images than classes) so that any ``n`` works.
    """
    classes, counts = torch.unique(labels, return_counts=True)
    exact = counts.double() * n / labels.shape[0]
    quotas = exact.floor().long()
    missing = n - int(quotas.sum())
    if missing > 0:
        # Largest remainder first. Ties go to classes in a random order, so
        # small subsets do not always favour the lowest class indices.
        shuffle = torch.randperm(len(classes), generator=generator)
        remainder = (exact - quotas)[shuffle]
        ranked = shuffle[remainder.argsort(descending=True, stable=True)]
        quotas[ranked[:missing]] += 1
    shuffled = labels[order]
    picks = [order[shuffled == c][:q] for c, q in zip(classes.tolist(), quotas.tolist())]
    return torch.cat(picks)


@dataclass(frozen=True, eq=False)
class DatasetSplits:
    """A named dataset's training and test sets.

    Attributes:
        name: dataset name as :func:`reactivate.data.load_dataset` takes it.
        train: training images.
        test: test images.
        num_classes: number of classes.
        image_shape: ``(C, H, W)`` of every image.
        classes: class names, index ``i`` naming label ``i``.
    """

    name: str
    train: TensorImages
    test: TensorImages
    num_classes: int
    image_shape: tuple[int, int, int]
    classes: tuple[str, ...]

    def __post_init__(self) -> None:
        for part in ("train", "test"):
            images = getattr(self, part)
            if not isinstance(images, TensorImages):
                raise DatasetError(f"{part} must be a TensorImages, got {type(images).__name__}")
            if tuple(images.images.shape[1:]) != tuple(self.image_shape):
                raise DatasetError(
                    f"{part} images have shape {tuple(images.images.shape[1:])} but image_shape is "
                    f"{tuple(self.image_shape)}; give the (C, H, W) of the images"
                )
        if len(self.classes) != self.num_classes:
            raise DatasetError(f"{len(self.classes)} class names given for num_classes={self.num_classes}")

    def to(self, device: torch.device | str, non_blocking: bool = False) -> "DatasetSplits":
        """Return a copy with both sets on ``device``."""
        return replace(
            self,
            train=self.train.to(device, non_blocking=non_blocking),
            test=self.test.to(device, non_blocking=non_blocking),
        )

    def subset(
        self, train: int | None = None, test: int | None = None, seed: int = 0, *, stratify: bool = True
    ) -> "DatasetSplits":
        """Return a copy whose sets are cut to ``train`` / ``test`` images (None keeps a set whole)."""
        return replace(
            self,
            train=self.train if train is None else self.train.subset(train, seed, stratify=stratify),
            test=self.test if test is None else self.test.subset(test, seed, stratify=stratify),
        )
