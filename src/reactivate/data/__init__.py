"""Whole-tensor image datasets and batched on-device augmentation."""

from .augment import FlipTranslateParams, RandomFlipTranslate
from .cifar10 import load_cifar10, read_cifar_pickle
from .datasets import DATA_ROOT_ENV, DATASETS, default_data_root, load_dataset
from .digits import load_digits_splits
from .mnist import load_mnist
from .splits import DatasetError, DatasetSplits, TensorImages

__all__ = [
    "load_dataset",
    "default_data_root",
    "DATASETS",
    "DATA_ROOT_ENV",
    "DatasetSplits",
    "TensorImages",
    "DatasetError",
    "RandomFlipTranslate",
    "FlipTranslateParams",
    "load_cifar10",
    "read_cifar_pickle",
    "load_digits_splits",
    "load_mnist",
]
