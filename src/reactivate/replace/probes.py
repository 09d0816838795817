"""Observation of the activation sites on an example input.

Temporary :class:`_Probe` modules stand in for the originals, apply them
unchanged and record each site's input shapes, range, device and dtype.
The helpers here run the model on a copy of the example input in eval
mode without gradients, compare outputs, and derive the parameter shape
that ``"channel"`` or ``"neuron"`` granularity needs at a site.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping

import torch
from torch import nn
from torch.utils._pytree import tree_flatten, tree_map

__all__ = ["_Probe", "_run", "_EvalNoGrad", "_output_difference", "_output_scale", "_site_shape"]

class _Probe(nn.Module):
    """Temporary stand-in that applies the original and records its inputs."""

    def __init__(self, function: Callable) -> None:
        super().__init__()
        self.function = function
        self.shapes: set[tuple[int, ...]] = set()
        self.low: torch.Tensor | None = None
        self.high: torch.Tensor | None = None
        self.device: torch.device | None = None
        self.dtype: torch.dtype | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if isinstance(x, torch.Tensor):
            self.shapes.add(tuple(x.shape))
            self.device, self.dtype = x.device, x.dtype
            if x.is_floating_point() and x.numel():
                finite = x.detach()[torch.isfinite(x.detach())]
                if finite.numel():
                    low, high = torch.aminmax(finite)
                    self.low = low if self.low is None else torch.minimum(self.low, low)
                    self.high = high if self.high is None else torch.maximum(self.high, high)
        return self.function(x)

    def observed_range(self) -> tuple[float, float] | None:
        if self.low is None:
            return None
        return (float(self.low), float(self.high))


def _clone_input(example: Any) -> Any:
    return tree_map(lambda v: v.clone() if isinstance(v, torch.Tensor) else v, example)


def _run(model: nn.Module, example: Any) -> Any:
    example = _clone_input(example)
    if isinstance(example, Mapping):
        return model(**example)
    if isinstance(example, (tuple, list)):
        return model(*example)
    return model(example)


class _EvalNoGrad:
    """Run a model in eval mode without gradients, then restore every training flag."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model

    def __enter__(self):
        self.flags = [(m, m.training) for m in self.model.modules()]
        self.model.eval()
        self.grad = torch.no_grad()
        self.grad.__enter__()
        return self

    def __exit__(self, *exc):
        self.grad.__exit__(*exc)
        for module, flag in self.flags:
            module.training = flag
        return False


def _output_difference(reference: Any, other: Any) -> float:
    ref_leaves, ref_spec = tree_flatten(reference)
    other_leaves, other_spec = tree_flatten(other)
    if ref_spec != other_spec:
        return math.inf
    worst = 0.0
    for a, b in zip(ref_leaves, other_leaves):
        if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
            if a.shape != b.shape:
                return math.inf
            if a.numel():
                worst = max(worst, float((a.float() - b.float()).abs().max()))
    return worst


def _output_scale(reference: Any) -> float:
    leaves, _ = tree_flatten(reference)
    scale = 0.0
    for a in leaves:
        if isinstance(a, torch.Tensor) and a.numel() and a.is_floating_point():
            scale = max(scale, float(a.abs().max()))
    return scale


def _site_shape(probe: _Probe | None, granularity: str) -> tuple[tuple[int, ...] | None, str]:
    if probe is None or not probe.shapes:
        return None, "example_input does not reach this site, so its input shape is unknown"
    shapes = sorted(probe.shapes)
    if any(len(s) < 2 for s in shapes):
        return None, f"input shape {shapes[0]} has no dimension after the batch dimension"
    if granularity == "channel":
        channels = {s[1] for s in shapes}
        if len(channels) > 1:
            return None, f"inputs with different channel counts {sorted(channels)}"
        return (shapes[0][1],), ""
    inner = {s[1:] for s in shapes}
    if len(inner) > 1:
        return None, (f"inputs of different shapes {sorted(inner)}; per-neuron parameters need one "
                      "fixed shape, use granularity='channel' or 'layer'")
    return shapes[0][1:], ""
