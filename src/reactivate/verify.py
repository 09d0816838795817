"""Compare an original model with a derived one on the same inputs."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Iterable

import torch
from torch import nn
from torch.utils._pytree import tree_flatten

from .errors import ReactivateError

__all__ = ["ComparisonResult", "compare_models"]


@dataclass(frozen=True)
class ComparisonResult:
    """Differences between the outputs of an original and a derived model.

    Attributes:
        max_abs_diff: maximum absolute difference of any output element.
        max_rel_diff: ``max_abs_diff`` divided by the largest absolute
            output of the original.
        mean_abs_diff: mean absolute difference over all output elements.
        class_agreement: fraction of samples whose arg-max over dimension 1
            agrees, or None when the outputs have no class dimension.
        num_samples: samples compared (size of dimension 0, summed).
        num_batches: batches compared.
    """

    max_abs_diff: float
    max_rel_diff: float
    mean_abs_diff: float
    class_agreement: float | None
    num_samples: int
    num_batches: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        agreement = "-" if self.class_agreement is None else f"{100 * self.class_agreement:.2f}%"
        return (f"max abs diff {self.max_abs_diff:.3g}, max rel diff {self.max_rel_diff:.3g}, "
                f"mean abs diff {self.mean_abs_diff:.3g}, class agreement {agreement} "
                f"over {self.num_samples} samples")


def _first_tensor(output: Any) -> torch.Tensor:
    for leaf in tree_flatten(output)[0]:
        if isinstance(leaf, torch.Tensor):
            return leaf
    raise ReactivateError(f"the model returned no tensor (got {type(output).__name__})")


def _batches(inputs: Any) -> Iterable[Any]:
    if isinstance(inputs, torch.Tensor):
        return [inputs]
    if isinstance(inputs, (str, bytes)) or not hasattr(inputs, "__iter__"):
        raise ReactivateError(
            f"inputs must be a tensor or an iterable of batches (such as a DataLoader), got {type(inputs).__name__}")
    return inputs


def _model_input(batch: Any) -> torch.Tensor:
    if isinstance(batch, torch.Tensor):
        return batch
    if isinstance(batch, (tuple, list)) and batch and isinstance(batch[0], torch.Tensor):
        return batch[0]
    raise ReactivateError(
        f"each batch must be a tensor or a (inputs, targets) pair, got {type(batch).__name__}")


def _device_of(model: nn.Module) -> torch.device | None:
    for tensor in list(model.parameters()) + list(model.buffers()):
        return tensor.device
    return None


@torch.no_grad()
def compare_models(
    original: nn.Module,
    derived: nn.Module,
    inputs: torch.Tensor | Iterable[Any],
    *,
    max_batches: int | None = None,
) -> ComparisonResult:
    """Run both models on the same inputs and measure how far the outputs differ.

    Both models run in eval mode without gradients; their training flags
    are restored afterwards. Each batch moves to the device of each model.

    Args:
        original: the reference model.
        derived: the model to check, such as a copy with replaced activations.
        inputs: a tensor (one batch) or an iterable of batches, such as a
            ``DataLoader``. A batch is a tensor or an ``(inputs, targets)``
            pair whose targets are ignored.
        max_batches: stop after this many batches. Default: None (all).

    Returns:
        A :class:`ComparisonResult`.

    Example:
        >>> derived = copy.deepcopy(model)  # doctest: +SKIP
        >>> replace_activations(derived, "exact")  # doctest: +SKIP
        >>> compare_models(model, derived, torch.randn(8, 3, 32, 32)).max_abs_diff  # doctest: +SKIP
        0.0
    """
    flags = [(m, m.training) for m in list(original.modules()) + list(derived.modules())]
    original.eval()
    derived.eval()
    max_abs, scale, total_abs, elements = 0.0, 0.0, 0.0, 0
    agree, samples, batches, has_classes = 0, 0, 0, True
    try:
        for batch in _batches(inputs):
            if max_batches is not None and batches >= max_batches:
                break
            x = _model_input(batch)
            a = _first_tensor(original(x.to(_device_of(original) or x.device)))
            b = _first_tensor(derived(x.to(_device_of(derived) or x.device))).to(a.device)
            if a.shape != b.shape:
                raise ReactivateError(f"the models return different shapes {tuple(a.shape)} and {tuple(b.shape)}")
            diff = (a.float() - b.float()).abs()  # float32: MPS has no float64
            if diff.numel():
                max_abs = max(max_abs, float(diff.max()))
                scale = max(scale, float(a.float().abs().max()))
                total_abs += float(diff.sum())
                elements += diff.numel()
            if a.dim() >= 2 and a.shape[1] > 1:
                same = a.argmax(1) == b.argmax(1)
                if same.dim() > 1:
                    # Dense outputs such as (N, C, H, W) agree for a sample when every position agrees.
                    same = same.flatten(1).all(1)
                agree += int(same.sum())
            else:
                has_classes = False
            samples += a.shape[0] if a.dim() else 1
            batches += 1
    finally:
        for module, flag in flags:
            module.training = flag
    if batches == 0:
        raise ReactivateError("inputs contained no batch to compare")
    if scale > 0:
        max_rel = max_abs / scale
    else:
        max_rel = 0.0 if max_abs == 0 else math.inf
    return ComparisonResult(
        max_abs_diff=max_abs,
        max_rel_diff=max_rel,
        mean_abs_diff=total_abs / elements if elements else 0.0,
        class_agreement=agree / samples if has_classes and samples else None,
        num_samples=samples,
        num_batches=batches,
    )
