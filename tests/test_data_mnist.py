"""MNIST and Fashion-MNIST through torchvision, from IDX files written by the test."""

import struct

import numpy as np
import pytest
import torch

from reactivate.data import DatasetError, load_dataset


def write_idx(folder, prefix, images, labels):
    n, rows, cols = images.shape
    (folder / f"{prefix}-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 0x803, n, rows, cols) + images.tobytes())
    (folder / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 0x801, n) + labels.tobytes())


def write_mnist(root, folder_name):
    folder = root / folder_name / "raw"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    train = rng.integers(0, 256, size=(30, 28, 28), dtype=np.uint8)
    test = rng.integers(0, 256, size=(10, 28, 28), dtype=np.uint8)
    write_idx(folder, "train", train, (np.arange(30) % 10).astype(np.uint8))
    write_idx(folder, "t10k", test, (np.arange(10) % 10).astype(np.uint8))
    return train, test


@pytest.mark.parametrize("name, folder", [("mnist", "MNIST"), ("fashion-mnist", "FashionMNIST")])
def test_reads_idx_files_and_pads(tmp_path, name, folder):
    train, test = write_mnist(tmp_path, folder)
    data = load_dataset(name, tmp_path)
    assert data.image_shape == (1, 32, 32)
    assert data.num_classes == 10
    assert data.train.images.shape == (30, 1, 32, 32)
    assert data.test.images.shape == (10, 1, 32, 32)
    # Two zero pixels on every side, the 28x28 image unchanged in the middle.
    assert torch.equal(data.train.images[:, 0, 2:30, 2:30], torch.from_numpy(train).float() / 255)
    assert float(data.train.images[:, :, :2].abs().sum()) == 0.0
    assert float(data.train.images[:, :, :, 30:].abs().sum()) == 0.0
    assert torch.equal(data.test.labels, torch.arange(10))


def test_missing_files_message(tmp_path):
    with pytest.raises(DatasetError) as info:
        load_dataset("fashion-mnist", tmp_path)
    message = str(info.value)
    assert str(tmp_path / "FashionMNIST" / "raw") in message
    assert "--download" in message
