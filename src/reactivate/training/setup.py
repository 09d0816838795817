"""Run setup for :func:`~reactivate.training.fit`: argument checks, device, determinism and seeds.

These helpers run before or around the epoch loop. They check the ``data``
and ``prior_best`` arguments, choose the training device, switch
deterministic algorithms on for the run, seed the global random generators
and derive further seeds. They also copy log records into ``train.log``,
choose the trainable parameters and their RMSprop groups, split a global
batch between processes and record the software versions and device name
for ``config.json``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import platform
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from torch import nn

from .. import __version__
from ..errors import ReactivateError
from ..tuning import freeze_except_activations, optimizer_param_groups, unfreeze_all
from .config import TrainConfig
from .distributed import DistInfo

__all__ = [
    "_check_data",
    "_check_prior_best",
    "_resolve_device",
    "_deterministic_mode",
    "_log_file",
    "_derived_seed",
    "_seed_globals",
    "_optimizer_groups",
    "_split_bounds",
    "_environment",
]

logger = logging.getLogger("reactivate.training")


def _check_data(data: Any) -> None:
    for split in ("train", "test"):
        images = getattr(data, split, None)
        if not (hasattr(images, "images") and hasattr(images, "labels")):
            raise ReactivateError(
                f"data.{split} must have 'images' and 'labels' tensors (a TensorImages); "
                f"got {type(images).__name__}"
            )
        if len(images.labels) == 0:
            raise ReactivateError(f"data.{split} is empty")


def _check_prior_best(prior_best: Any) -> tuple[float, int]:
    try:
        accuracy, epoch = prior_best
        accuracy, epoch = float(accuracy), int(epoch)
    except (TypeError, ValueError):
        raise ReactivateError(f"prior_best must be an (accuracy, epoch) pair, got {prior_best!r}") from None
    return accuracy, epoch


def _resolve_device(name: str, info: DistInfo) -> torch.device:
    if name == "auto":
        return info.device
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ReactivateError(f"TrainConfig.device is {name!r} but CUDA is not available; use 'auto' or 'cpu'")
    if info.distributed and device.type == "cuda" and device.index is None:
        device = info.device
    return device


@contextlib.contextmanager
def _deterministic_mode(enabled: bool, device: torch.device) -> Iterator[None]:
    """Switch deterministic algorithms on for a block, restoring the old settings after."""
    previous = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.backends.cudnn.benchmark,
        torch.backends.cudnn.deterministic,
    )
    if enabled:
        if device.type == "cuda":
            # cuBLAS needs a fixed workspace size for reproducible results.
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        if not previous[0] or previous[1]:
            torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
    try:
        yield
    finally:
        if (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()) != previous[:2]:
            torch.use_deterministic_algorithms(previous[0], warn_only=previous[1])
        torch.backends.cudnn.benchmark = previous[2]
        torch.backends.cudnn.deterministic = previous[3]


@contextlib.contextmanager
def _log_file(path: Path, enabled: bool) -> Iterator[None]:
    """Copy this package's log records at INFO and above into ``path`` during a block."""
    if not enabled:
        yield
        return
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    previous_level = logger.level
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous_level)
        handler.close()


def _derived_seed(*values: int) -> int:
    """Derive a 63-bit seed from several integers, uncorrelated with each of them."""
    return int(np.random.SeedSequence(list(values)).generate_state(1, dtype=np.uint64)[0]) >> 1


def _seed_globals(seed: int) -> None:
    import random

    random.seed(seed)
    np.random.seed(seed % (1 << 32))
    torch.manual_seed(seed)


def _optimizer_groups(model: nn.Module, config: TrainConfig) -> list[dict[str, Any]]:
    """Set ``requires_grad`` for ``config.trainable`` and return RMSprop parameter groups.

    Adaptive activation parameters form their own group without weight decay.
    """
    if config.trainable == "activations":
        # Also keeps BatchNorm running statistics fixed, so every frozen tensor stays unchanged.
        freeze_except_activations(model)
    else:
        unfreeze_all(model)
    groups = optimizer_param_groups(model, weight_decay=config.weight_decay)
    if not groups:
        raise ReactivateError("the model has no parameters to train")
    return groups


def _split_bounds(count: int, rank: int, world_size: int) -> tuple[int, int]:
    base, remainder = divmod(count, world_size)
    start = rank * base + min(rank, remainder)
    return start, start + base + (1 if rank < remainder else 0)


def _environment() -> dict[str, Any]:
    return {
        "reactivate": __version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cuda": torch.version.cuda if torch.cuda.is_available() else None,
        "device_name": torch.cuda.get_device_name() if torch.cuda.is_available() else platform.processor(),
    }
