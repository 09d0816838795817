"""CIFAR-10 from the official python batches, read with a restricted unpickler.

The official archive ``cifar-10-python.tar.gz`` unpacks to
``cifar-10-batches-py/`` with five training batches of 10,000 images
(``data_batch_1`` ... ``data_batch_5``), ``test_batch`` (10,000 images) and
``batches.meta`` (the class names). Each batch is a pickled dict. Its
``b"data"`` entry is a uint8 array of shape (N, 3072) with one row per image:
the 1024 red, then green, then blue values, each in row-major 32x32 order.
Its ``b"labels"`` entry is a list of N class indices.
"""

from __future__ import annotations

import importlib
import os
import pickle
import shutil
import tempfile
from pathlib import Path
from typing import Any
from urllib.error import URLError

import numpy as np
import torch

from .splits import DatasetError, DatasetSplits, TensorImages

__all__ = [
    "CIFAR10_URL",
    "CIFAR10_MD5",
    "CIFAR10_FOLDER",
    "CIFAR10_CLASSES",
    "load_cifar10",
    "read_cifar_pickle",
]

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip

_TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
_TEST_FILE = "test_batch"
_META_FILE = "batches.meta"

# The only globals a CIFAR-10 batch needs: numpy array reconstruction (under
# the module names of numpy 1 and numpy 2, and of pickle protocols 2 and 5)
# and the bytes decoding that Python 2 pickles use.
_ALLOWED_GLOBALS = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("_codecs", "encode"),
}


class _ForbiddenGlobal(pickle.UnpicklingError):
    """A pickle names a global outside ``_ALLOWED_GLOBALS``."""


class _CifarUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the globals listed in ``_ALLOWED_GLOBALS``.

    The official batches are pickles, and a plain ``pickle.load`` runs any
    callable a file names, so a tampered file could execute code. This
    unpickler rejects every other global, which leaves plain containers,
    numbers, bytes and numpy arrays.
    """

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED_GLOBALS:
            raise _ForbiddenGlobal(f"global {module}.{name} is not allowed in a CIFAR-10 batch")
        if module.startswith("numpy.core.") and hasattr(np, "_core"):
            # numpy 2 moved numpy.core to numpy._core; old pickles keep the old name.
            module = "numpy._core." + module[len("numpy.core.") :]
        return getattr(importlib.import_module(module), name)


def read_cifar_pickle(path: str | os.PathLike) -> dict:
    """Read one pickled CIFAR batch with the restricted unpickler.

    Args:
        path: file to read.

    Returns:
        The unpickled dict, with bytes keys as Python 2 wrote them.

    Raises:
        DatasetError: the file names a global outside numpy array
            reconstruction, or is not a readable pickle of a dict.
    """
    path = Path(path)
    try:
        with path.open("rb") as file:
            content = _CifarUnpickler(file, encoding="bytes").load()
    except _ForbiddenGlobal as error:
        raise DatasetError(f"{path} was rejected: {error}; delete it and download CIFAR-10 again") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as error:
        raise DatasetError(f"{path} is not a readable CIFAR-10 batch ({error}); delete it and download again") from None
    if not isinstance(content, dict):
        raise DatasetError(f"{path} contains a {type(content).__name__}, not a CIFAR-10 batch dict")
    return content


def _entry(batch: dict, key: str, path: Path) -> Any:
    for candidate in (key.encode(), key):
        if candidate in batch:
            return batch[candidate]
    raise DatasetError(f"{path} has no {key!r} entry; it is not a CIFAR-10 batch")


def _read_batch(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    batch = read_cifar_pickle(path)
    data = _entry(batch, "data", path)
    labels = _entry(batch, "labels", path)
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        described = f"{data.dtype} array of shape {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise DatasetError(f"{path}: 'data' must be a uint8 array of shape (N, 3072), found {described}")
    labels = np.asarray(labels, dtype=np.int64)
    if labels.shape != (data.shape[0],):
        raise DatasetError(f"{path}: {data.shape[0]} images but {labels.size} labels")
    if labels.size and (labels.min() < 0 or labels.max() >= len(CIFAR10_CLASSES)):
        raise DatasetError(f"{path}: labels must lie in 0..9, found {labels.min()}..{labels.max()}")
    images = torch.from_numpy(data).reshape(-1, 3, 32, 32)
    return images, torch.from_numpy(labels)


def _to_tensor_images(parts: list[tuple[torch.Tensor, torch.Tensor]]) -> TensorImages:
    images = torch.cat([p[0] for p in parts]).to(torch.float32).div_(255.0)
    labels = torch.cat([p[1] for p in parts])
    return TensorImages(images, labels)


def _read_classes(path: Path) -> tuple[str, ...]:
    names = _entry(read_cifar_pickle(path), "label_names", path)
    classes = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names)
    if len(classes) != len(CIFAR10_CLASSES):
        raise DatasetError(f"{path} lists {len(classes)} class names; CIFAR-10 has {len(CIFAR10_CLASSES)}")
    return classes


def _download(root: Path) -> None:
    """Download and unpack the archive, checking its MD5 checksum.

    torchvision's ``download_url`` writes the archive to ``root`` and
    verifies the checksum. The archive is unpacked into a temporary folder
    next to the final one, which is then renamed into place, so an
    interrupted run never leaves a partly written ``cifar-10-batches-py``.
    """
    from torchvision.datasets.utils import download_url, extract_archive

    root.mkdir(parents=True, exist_ok=True)
    try:
        download_url(CIFAR10_URL, root, filename="cifar-10-python.tar.gz", md5=CIFAR10_MD5)
    except (URLError, OSError, RuntimeError) as error:
        raise DatasetError(f"downloading {CIFAR10_URL} into {root} failed: {error}") from None
    staging = Path(tempfile.mkdtemp(prefix=".cifar10-", dir=root))
    try:
        extract_archive(root / "cifar-10-python.tar.gz", staging)
        target = root / CIFAR10_FOLDER
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging / CIFAR10_FOLDER, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def load_cifar10(root: str | os.PathLike, *, download: bool = False) -> DatasetSplits:
    """Load CIFAR-10 from ``root/cifar-10-batches-py``.

    Args:
        root: folder that contains (or receives) ``cifar-10-batches-py``.
        download: fetch the official archive (about 163 MB) when files are
            missing, checking its MD5 checksum. Default: False.

    Returns:
        :class:`DatasetSplits` with 50,000 training and 10,000 test images of
        shape 3x32x32, float32 in [0, 1] (about 740 MB in all).

    Raises:
        DatasetError: files are missing and ``download`` is False, the
            download failed, or a file is not a valid CIFAR-10 batch.
    """
    root = Path(root).expanduser()
    folder = root / CIFAR10_FOLDER
    needed = (*_TRAIN_FILES, _TEST_FILE, _META_FILE)
    missing = [name for name in needed if not (folder / name).is_file()]
    if missing and download:
        _download(root)
        missing = [name for name in needed if not (folder / name).is_file()]
    if missing:
        where = f"{folder} lacks {', '.join(missing)}" if folder.is_dir() else f"there is no folder {folder}"
        hint = "the download did not contain them" if download else "download the files with the --download option (download=True in Python), or point --data-dir (root) at an existing copy"
        raise DatasetError(f"CIFAR-10 not found: {where}; {hint}")

    train = _to_tensor_images([_read_batch(folder / name) for name in _TRAIN_FILES])
    test = _to_tensor_images([_read_batch(folder / _TEST_FILE)])
    return DatasetSplits(
        name="cifar10",
        train=train,
        test=test,
        num_classes=len(CIFAR10_CLASSES),
        image_shape=(3, 32, 32),
        classes=_read_classes(folder / _META_FILE),
    )
