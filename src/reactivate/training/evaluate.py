"""Test-set accuracy and cross-entropy of a classifier, single or multi-process."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from ..errors import ReactivateError
from .distributed import all_reduce_sum

__all__ = ["EvalResult", "evaluate"]


@dataclass(frozen=True)
class EvalResult:
    """Result of :func:`evaluate`.

    Args:
        accuracy (float): fraction of correctly classified images, in [0, 1].
        loss (float): mean cross-entropy over the images.
        predictions (torch.Tensor): predicted class of every image, int64 of
            shape (N,), on the CPU; under a process group, those of the whole
            set in the original order.
    """

    accuracy: float
    loss: float
    predictions: torch.Tensor


def _model_device(model: nn.Module) -> torch.device:
    for tensor in list(model.parameters()) + list(model.buffers()):
        return tensor.device
    return torch.device("cpu")


def _shard_bounds(count: int, rank: int, world_size: int) -> tuple[int, int]:
    """Contiguous near-equal slice ``[start, stop)`` of ``count`` items for ``rank``."""
    base, remainder = divmod(count, world_size)
    start = rank * base + min(rank, remainder)
    return start, start + base + (1 if rank < remainder else 0)


@torch.no_grad()
def evaluation_sums(
    model: nn.Module,
    images: Any,
    batch_size: int,
    device: torch.device,
    rank: int = 0,
    world_size: int = 1,
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Evaluate this process's shard of ``images``.

    Returns:
        tuple: ``(sums, predictions, start)`` where ``sums`` is a float64
        tensor ``[correct, loss sum, count]`` on ``device``, not yet reduced
        over processes, ``predictions`` the int64 predictions of the shard
        and ``start`` the shard's first index.
    """
    start, stop = _shard_bounds(len(images.labels), rank, world_size)
    sums = torch.zeros(3, dtype=torch.float64, device=device)
    predictions = []
    was_training = model.training
    model.eval()
    try:
        for begin in range(start, stop, batch_size):
            end = min(begin + batch_size, stop)
            inputs = images.images[begin:end].to(device, non_blocking=True)
            labels = images.labels[begin:end].to(device, non_blocking=True)
            logits = model(inputs)
            sums[0] += (logits.argmax(dim=1) == labels).sum()
            sums[1] += F.cross_entropy(logits.float(), labels, reduction="sum").double()
            predictions.append(logits.argmax(dim=1))
    finally:
        model.train(was_training)
    sums[2] = stop - start
    local = torch.cat(predictions) if predictions else torch.zeros(0, dtype=torch.int64, device=device)
    return sums, local, start


def evaluate(
    model: nn.Module,
    images: Any,
    batch_size: int = 1000,
    device: torch.device | str | None = None,
    *,
    distributed: bool | None = None,
) -> EvalResult:
    """Compute the accuracy and mean cross-entropy of ``model`` on ``images``.

    The model runs in eval mode (dropout off, BatchNorm running statistics)
    without gradients and is put back in its previous mode afterwards.
    Batches move to ``device`` one at a time, so ``images`` may stay on the
    CPU.

    Args:
        model (nn.Module): classifier returning logits of shape (B, classes).
        images (TensorImages): ``images`` (N, C, H, W) and ``labels`` (N,).
        batch_size (int): images per forward pass. Default: 1000.
        device (torch.device | str, optional): where to run; None uses the
            device of the model's parameters. Default: None.
        distributed (bool, optional): split the images between the processes
            of the initialized process group, each evaluating one contiguous
            shard, and sum the counts with ``all_reduce``. Every process must
            then call this function. None does so whenever a process group of more than one
            process is initialized. Default: None.

    Returns:
        EvalResult: accuracy, mean loss and predictions, the same on every
        process.

    Example::

        >>> result = evaluate(model, data.test)
        >>> print(f"{result.accuracy:.2%}")
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ReactivateError(f"batch_size must be a positive integer, got {batch_size!r}")
    if len(images.labels) == 0:
        raise ReactivateError("cannot evaluate on an empty image set")
    device = _model_device(model) if device is None else torch.device(device)
    group_active = dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
    if distributed is None:
        distributed = group_active
    if distributed and not group_active:
        raise ReactivateError("distributed=True needs an initialized process group of more than one process")
    rank, world_size = (dist.get_rank(), dist.get_world_size()) if distributed else (0, 1)

    sums, local, start = evaluation_sums(model, images, batch_size, device, rank, world_size)
    if distributed:
        all_reduce_sum(sums)
        predictions = _gather_predictions(local, len(images.labels), start)
    else:
        predictions = local.cpu()
    correct, loss_sum, count = sums.tolist()
    return EvalResult(accuracy=correct / count, loss=loss_sum / count, predictions=predictions)


def _gather_predictions(local: torch.Tensor, total: int, start: int) -> torch.Tensor:
    # Every shard is scattered into a full-length tensor, so one all_reduce
    # assembles the predictions without padding shards of unequal length.
    full = torch.zeros(total, dtype=torch.int64, device=local.device)
    full[start : start + local.numel()] = local
    all_reduce_sum(full)
    return full.cpu()
