"""Load a dataset by name as whole tensors, with optional subsets."""

from __future__ import annotations

import os
from pathlib import Path

from .cifar10 import load_cifar10
from .digits import load_digits_splits
from .mnist import load_mnist
from .splits import DatasetError, DatasetSplits, check_subset_size

__all__ = ["DATASETS", "DATA_ROOT_ENV", "default_data_root", "load_dataset"]

DATASETS = ("digits", "cifar10", "mnist", "fashion-mnist")
DATA_ROOT_ENV = "REACTIVATE_DATA"

_ALIASES = {
    "cifar-10": "cifar10",
    "cifar_10": "cifar10",
    "fashion_mnist": "fashion-mnist",
    "fashionmnist": "fashion-mnist",
}


def default_data_root() -> Path:
    """Return ``$REACTIVATE_DATA`` when set, else ``~/.cache/reactivate/data``."""
    configured = os.environ.get(DATA_ROOT_ENV)
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "reactivate" / "data"


def load_dataset(
    name: str,
    root: str | os.PathLike | None = None,
    *,
    download: bool = False,
    train_subset: int | None = None,
    test_subset: int | None = None,
    seed: int = 0,
) -> DatasetSplits:
    """Load a dataset as float32 (N, C, H, W) tensors in [0, 1] on the CPU.

    Datasets:

    * ``"digits"``: scikit-learn's 1,797 handwritten digits, 1x32x32, a
      fixed 1,437 / 360 stratified split; offline, ``root`` is unused.
    * ``"cifar10"``: the official python batches in
      ``root/cifar-10-batches-py``, 3x32x32, 50,000 / 10,000.
    * ``"mnist"``, ``"fashion-mnist"``: torchvision's IDX files under
      ``root``, zero-padded to 1x32x32, 60,000 / 10,000.

    Args:
        name: dataset name, case-insensitive.
        root: data folder. Default: ``$REACTIVATE_DATA`` when set, else
            ``~/.cache/reactivate/data``.
        download: fetch missing files (checksum-verified); otherwise a missing
            dataset raises. Default: False.
        train_subset: keep this many training images, class-stratified.
            Default: None (all).
        test_subset: the same for the test set. Default: None (all).
        seed: seed of the subset choice. Default: 0.

    Returns:
        :class:`DatasetSplits`; move it with ``.to(device)``.

    Raises:
        DatasetError: the name is unknown, the files are missing (the
            message names the folder searched), or a subset size is invalid.

    Example::

        >>> data = load_dataset("digits", train_subset=500)
        >>> len(data.train), data.image_shape
        (500, (1, 32, 32))
    """
    if not isinstance(name, str):
        raise DatasetError(f"dataset name must be a string, got {name!r}; known datasets: {', '.join(DATASETS)}")
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in DATASETS:
        raise DatasetError(f"unknown dataset {name!r}; known datasets: {', '.join(DATASETS)}")
    data_root = default_data_root() if root is None else Path(root).expanduser()

    if key == "digits":
        splits = load_digits_splits()
    elif key == "cifar10":
        splits = load_cifar10(data_root, download=download)
    else:
        splits = load_mnist(key, data_root, download=download)

    # Check both sizes before cutting, so the error names the argument.
    if train_subset is not None:
        check_subset_size("train_subset", train_subset, len(splits.train))
    if test_subset is not None:
        check_subset_size("test_subset", test_subset, len(splits.test))
    return splits.subset(train_subset, test_subset, seed)
