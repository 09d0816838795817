"""scikit-learn's handwritten digits, upscaled to 32x32: the offline dataset.

``sklearn.datasets.load_digits`` ships 1,797 real 8x8 grey images of the
digits 0-9 (values 0..16) inside scikit-learn, so this dataset needs no
download and no data folder.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from .splits import DatasetSplits, TensorImages

__all__ = ["DIGITS_TEST_SIZE", "DIGITS_SPLIT_SEED", "DIGITS_IMAGE_SIZE", "load_digits_splits"]

DIGITS_TEST_SIZE = 360
DIGITS_SPLIT_SEED = 0
DIGITS_IMAGE_SIZE = 32


def load_digits_splits() -> DatasetSplits:
    """Load the digits as 1x32x32 images with a fixed stratified split.

    The 8x8 values are divided by 16 and upscaled to 32x32 with bilinear
    interpolation (``F.interpolate``, ``align_corners=False``). Every output
    pixel is a convex combination of input pixels, so values stay in
    [0, 1]. The split puts 360 images (20 %) in the test set, stratified by
    class with ``random_state=0``, so it is the same on every run.

    Returns:
        :class:`DatasetSplits` with 1,437 training and 360 test images,
        float32, 10 classes named "0" to "9".
    """
    pixels, labels = load_digits(return_X_y=True)
    train_index, test_index = train_test_split(
        range(len(labels)),
        test_size=DIGITS_TEST_SIZE,
        random_state=DIGITS_SPLIT_SEED,
        stratify=labels,
    )
    small = torch.as_tensor(pixels, dtype=torch.float32).reshape(-1, 1, 8, 8) / 16.0
    images = F.interpolate(small, size=(DIGITS_IMAGE_SIZE, DIGITS_IMAGE_SIZE), mode="bilinear", align_corners=False)
    # Rounding can leave values a few ulps outside [0, 1].
    images = images.clamp_(0.0, 1.0)
    targets = torch.as_tensor(labels, dtype=torch.int64)
    train_index = torch.as_tensor(sorted(train_index))
    test_index = torch.as_tensor(sorted(test_index))
    return DatasetSplits(
        name="digits",
        train=TensorImages(images[train_index].contiguous(), targets[train_index].contiguous()),
        test=TensorImages(images[test_index].contiguous(), targets[test_index].contiguous()),
        num_classes=10,
        image_shape=(1, DIGITS_IMAGE_SIZE, DIGITS_IMAGE_SIZE),
        classes=tuple(str(d) for d in range(10)),
    )
