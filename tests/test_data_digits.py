"""Offline digits dataset, dataset names and whole-tensor subsets."""

import pytest
import torch

from reactivate.data import DatasetError, DatasetSplits, TensorImages, load_dataset


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def test_digits_shapes(digits):
    assert isinstance(digits, DatasetSplits)
    assert digits.image_shape == (1, 32, 32)
    assert digits.num_classes == 10
    assert digits.classes == tuple("0123456789")
    assert digits.train.images.shape == (1437, 1, 32, 32)
    assert digits.test.images.shape == (360, 1, 32, 32)
    assert digits.train.images.dtype == torch.float32
    assert digits.test.labels.dtype == torch.int64


def test_digits_range_uses_full_scale(digits):
    for part in (digits.train, digits.test):
        assert float(part.images.min()) == 0.0
        assert float(part.images.max()) == 1.0


def test_digits_split_stratified(digits):
    train_counts = torch.bincount(digits.train.labels, minlength=10)
    test_counts = torch.bincount(digits.test.labels, minlength=10)
    # 1,797 images with 174-183 per class; a 20 % stratified test share is 35-37.
    assert int(test_counts.min()) >= 35
    assert int(test_counts.max()) <= 37
    assert int((train_counts + test_counts).sum()) == 1797


def image_keys(images):
    return {row.numpy().tobytes() for row in images.flatten(1)}


def test_digits_split_disjoint(digits):
    shared = image_keys(digits.train.images) & image_keys(digits.test.images)
    # The raw set contains a few exact duplicates, which may land on both sides.
    assert len(shared) <= 3


def test_digits_deterministic(digits):
    again = load_dataset("digits")
    assert torch.equal(again.train.images, digits.train.images)
    assert torch.equal(again.test.labels, digits.test.labels)


def test_digits_upscaled_from_8x8(digits):
    from sklearn.datasets import load_digits

    pixels, labels = load_digits(return_X_y=True)
    originals = torch.as_tensor(pixels, dtype=torch.float32) / 16
    # Averaging 4x4 blocks of the bilinear upscale comes close to the 8x8
    # original, so the nearest original image must carry the same label.
    small = torch.nn.functional.avg_pool2d(digits.train.images[:50], 4).flatten(1)
    distance = (small[:, None, :] - originals[None]).abs().mean(-1)
    nearest_distance, nearest = distance.min(1)
    assert float(nearest_distance.max()) < 0.15
    assert torch.equal(torch.as_tensor(labels)[nearest], digits.train.labels[:50])


def test_subset_stratified_and_seeded(digits):
    first = digits.train.subset(100, seed=5)
    second = digits.train.subset(100, seed=5)
    other = digits.train.subset(100, seed=6)
    assert len(first) == 100
    assert torch.equal(first.images, second.images)
    assert not torch.equal(first.images, other.images)
    assert torch.equal(torch.bincount(first.labels, minlength=10), torch.full((10,), 10))


def test_subset_smaller_than_class_count(digits):
    small = digits.train.subset(4, seed=0)
    assert len(small) == 4
    assert len(torch.unique(small.labels)) == 4


def test_subset_random(digits):
    sample = digits.train.subset(50, seed=0, stratify=False)
    assert len(sample) == 50
    assert torch.equal(sample.images, digits.train.subset(50, seed=0, stratify=False).images)


def test_subset_rows_come_from_the_set(digits):
    sample = digits.test.subset(30, seed=2)
    assert image_keys(sample.images) <= image_keys(digits.test.images)


def test_subset_whole_set_is_unchanged(digits):
    assert digits.test.subset(360) is digits.test


@pytest.mark.parametrize("n", [0, -3, 2.5, 361])
def test_subset_invalid_size(digits, n):
    with pytest.raises(DatasetError, match=f"n={n}"):
        digits.test.subset(n)


def test_load_dataset_subsets():
    data = load_dataset("Digits", train_subset=200, test_subset=50, seed=1)
    assert (len(data.train), len(data.test)) == (200, 50)
    assert torch.equal(torch.bincount(data.train.labels), torch.full((10,), 20))


def test_load_dataset_subset_too_large():
    with pytest.raises(DatasetError, match="test_subset=500 is larger than the 360 images"):
        load_dataset("digits", test_subset=500)


def test_unknown_dataset_name():
    with pytest.raises(DatasetError, match="unknown dataset 'imagenet'; known datasets: digits, cifar10"):
        load_dataset("imagenet")


def test_dataset_error_is_value_error():
    assert issubclass(DatasetError, ValueError)


def test_to_device_keeps_content(digits):
    moved = digits.to("cpu")
    assert moved.train.images.device.type == "cpu"
    assert torch.equal(moved.test.labels, digits.test.labels)
    assert len(moved.train) == 1437


@pytest.mark.parametrize(
    "images, labels, message",
    [
        (torch.rand(4, 32, 32), torch.zeros(4, dtype=torch.int64), r"shape \(N, C, H, W\)"),
        (torch.zeros(4, 1, 8, 8, dtype=torch.uint8), torch.zeros(4, dtype=torch.int64), "floating-point"),
        (torch.rand(4, 1, 8, 8), torch.zeros(4, dtype=torch.int32), "int64"),
        (torch.rand(4, 1, 8, 8), torch.zeros(3, dtype=torch.int64), "4 images, 3 labels"),
    ],
)
def test_tensor_images_invalid(images, labels, message):
    with pytest.raises(DatasetError, match=message):
        TensorImages(images, labels)


def test_splits_shape_mismatch(digits):
    with pytest.raises(DatasetError, match=r"train images have shape \(1, 32, 32\) but image_shape is \(3, 32, 32\)"):
        DatasetSplits("digits", digits.train, digits.test, 10, (3, 32, 32), digits.classes)


def test_splits_class_names_mismatch(digits):
    with pytest.raises(DatasetError, match="3 class names given for num_classes=10"):
        DatasetSplits("digits", digits.train, digits.test, 10, (1, 32, 32), ("a", "b", "c"))
