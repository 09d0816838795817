"""MNIST and Fashion-MNIST through torchvision, zero-padded to 32x32.

torchvision reads the uncompressed IDX files from ``root/MNIST/raw`` or
``root/FashionMNIST/raw`` (``train-images-idx3-ubyte``,
``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``,
``t10k-labels-idx1-ubyte``) and downloads them only when asked.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F

from .splits import DatasetError, DatasetSplits, TensorImages

__all__ = ["load_mnist"]

# Each 28x28 image gets 2 zero pixels on every side, which keeps the pixel
# grid (no resampling) and gives the 32x32 input of the CIFAR-10 networks.
_PAD = 2


def _dataset_class(name: str):
    from torchvision.datasets import MNIST, FashionMNIST

    return {"mnist": MNIST, "fashion-mnist": FashionMNIST}[name]


def _read(cls, root: Path, train: bool, download: bool) -> TensorImages:
    folder = root / cls.__name__ / "raw"
    try:
        dataset = cls(root=str(root), train=train, download=download)
    except RuntimeError as error:
        if "not found" in str(error).lower():
            hint = "the download did not produce them" if download else "download the files with the --download option (download=True in Python), or point --data-dir (root) at an existing copy"
            raise DatasetError(f"{cls.__name__} not found: {folder} lacks the IDX files; {hint}") from None
        raise DatasetError(f"reading {cls.__name__} from {folder} failed: {error}") from None
    except (OSError, ValueError, AssertionError) as error:
        raise DatasetError(f"reading {cls.__name__} from {folder} failed: {error}") from None
    images = dataset.data.unsqueeze(1).to(torch.float32).div_(255.0)
    images = F.pad(images, (_PAD, _PAD, _PAD, _PAD))
    return TensorImages(images.contiguous(), dataset.targets.to(torch.int64))


def load_mnist(name: str, root: str | os.PathLike, *, download: bool = False) -> DatasetSplits:
    """Load ``"mnist"`` or ``"fashion-mnist"`` as 1x32x32 float32 images in [0, 1].

    Args:
        name: ``"mnist"`` or ``"fashion-mnist"``.
        root: folder that contains ``MNIST/raw`` or ``FashionMNIST/raw``.
        download: let torchvision fetch missing files. Default: False.

    Returns:
        :class:`DatasetSplits` with the official 60,000 / 10,000 split.

    Raises:
        DatasetError: files are missing and ``download`` is False, or
            torchvision could not read them.
    """
    cls = _dataset_class(name)
    root = Path(root).expanduser()
    train = _read(cls, root, train=True, download=download)
    test = _read(cls, root, train=False, download=download)
    return DatasetSplits(
        name=name,
        train=train,
        test=test,
        num_classes=len(cls.classes),
        image_shape=(1, 28 + 2 * _PAD, 28 + 2 * _PAD),
        classes=tuple(cls.classes),
    )
