"""LEAF: the learnable extended activation function."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from .ahaf import GELU_GAMMA, PAPER_RELU_GAMMA
from .base import AdaptiveActivation, ErrorBound, _check_finite

__all__ = ["LEAF"]


class LEAF(AdaptiveActivation):
    r"""Learnable extended activation function.

    .. math::
        \text{LEAF}(z) = (p_1 z + p_2)\,\sigma(p_3 z) + p_4

    Start values (p1, p2, p3, p4): silu (1, 0, 1, 0), sigmoid (0, 1, 1, 0),
    tanh (0, 2, 2, -1), all exact; relu (1, 0, gamma, 0) with max abs error
    0.2785/gamma; gelu (1, 0, 1.702, 0) approximate.

    Shape: input (N, *), output the same; each of p1..p4 has shape () for
    "layer", (C,) for "channel" and ``shape`` for "neuron".
    """

    family = "leaf"
    supported_inits = ("relu", "silu", "swish", "sigmoid", "tanh", "gelu")

    def __init__(
        self,
        init: str = "silu",
        *,
        granularity: str = "layer",
        shape: Sequence[int] | None = None,
        gamma: float | None = None,
        slope: float | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(init, granularity=granularity, shape=shape)
        if init == "relu":
            p3 = PAPER_RELU_GAMMA if gamma is None else _check_finite("gamma", gamma)
            if p3 <= 0:
                raise ValueError(f"gamma={p3!r} must be positive for init='relu'")
            self.init_kwargs = {"gamma": p3}
            start = (1.0, 0.0, p3, 0.0)
        elif init == "swish":
            b = 1.0 if slope is None else _check_finite("slope", slope)
            self.init_kwargs = {"slope": b}
            start = (1.0, 0.0, b, 0.0)
        else:
            start = {
                "silu": (1.0, 0.0, 1.0, 0.0),
                "sigmoid": (0.0, 1.0, 1.0, 0.0),
                "tanh": (0.0, 2.0, 2.0, -1.0),
                "gelu": (1.0, 0.0, GELU_GAMMA, 0.0),
            }[init]
        factory = {"device": device, "dtype": dtype or torch.float32}
        size = self._parameter_shape()
        self.p1 = nn.Parameter(torch.full(size, start[0], **factory))
        self.p2 = nn.Parameter(torch.full(size, start[1], **factory))
        self.p3 = nn.Parameter(torch.full(size, start[2], **factory))
        self.p4 = nn.Parameter(torch.full(size, start[3], **factory))

    def _classic_kwargs(self):
        return {"slope": self.init_kwargs["slope"]} if self.init == "swish" else {}

    def reference_forward(self, x: torch.Tensor) -> torch.Tensor:
        p1, p2, p3, p4 = (self._broadcast(p, x) for p in (self.p1, self.p2, self.p3, self.p4))
        return (p1 * x + p2) * torch.sigmoid(p3 * x) + p4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        return self.reference_forward(x)

    def error_bound(self, interval=(-4.0, 4.0)) -> ErrorBound:
        interval = (float(interval[0]), float(interval[1]))
        if self.init in ("silu", "swish", "sigmoid", "tanh"):
            return ErrorBound(self.init, True, interval, 0.0, 0.0, "exact")
        if self.init == "relu":
            bound = 0.2785 / self.init_kwargs["gamma"]
            return ErrorBound("relu", False, interval, bound, bound, "analytic")
        err = self._computed_error(interval)
        real = max(err, self._computed_error((-50.0, 50.0)))
        return ErrorBound(self.init, False, interval, err, real, "computed")
