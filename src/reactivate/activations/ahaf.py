"""AHAF: the adaptive hybrid activation function."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from .base import AdaptiveActivation, ErrorBound, _check_finite

__all__ = ["AHAF"]

# The paper replaces ReLU with gamma = 1e9. The error bound is 0.2785 / gamma.
PAPER_RELU_GAMMA = 1e9
GELU_GAMMA = 1.702


class AHAF(AdaptiveActivation):
    r"""Adaptive hybrid activation function.

    .. math::
        \text{AHAF}(z) = \beta \, z \, \sigma(\gamma z)

    Start values: silu (beta=1, gamma=1, exact), swish with ``slope=b``
    (beta=1, gamma=b, exact), relu (beta=1, gamma=``gamma``, max abs error
    0.2785/gamma), gelu (beta=1, gamma=1.702, approximate).

    Shape: input (N, *), output the same; ``beta`` and ``gamma`` have shape
    () for "layer", (C,) for "channel" and ``shape`` for "neuron".
    """

    family = "ahaf"
    supported_inits = ("relu", "silu", "swish", "gelu")

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
            gamma0 = PAPER_RELU_GAMMA if gamma is None else _check_finite("gamma", gamma)
            if gamma0 <= 0:
                raise ValueError(f"gamma={gamma0!r} must be positive for init='relu'")
            self.init_kwargs = {"gamma": gamma0}
        elif init == "swish":
            gamma0 = 1.0 if slope is None else _check_finite("slope", slope)
            self.init_kwargs = {"slope": gamma0}
        elif init == "gelu":
            gamma0 = GELU_GAMMA
        else:
            gamma0 = 1.0
        factory = {"device": device, "dtype": dtype or torch.float32}
        size = self._parameter_shape()
        self.beta = nn.Parameter(torch.ones(size, **factory))
        self.gamma = nn.Parameter(torch.full(size, gamma0, **factory))

    def _classic_kwargs(self):
        return {"slope": self.init_kwargs["slope"]} if self.init == "swish" else {}

    def reference_forward(self, x: torch.Tensor) -> torch.Tensor:
        beta = self._broadcast(self.beta, x)
        gamma = self._broadcast(self.gamma, x)
        return beta * x * torch.sigmoid(gamma * x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        return self.reference_forward(x)

    def error_bound(self, interval=(-4.0, 4.0)) -> ErrorBound:
        interval = (float(interval[0]), float(interval[1]))
        if self.init in ("silu", "swish"):
            return ErrorBound(self.init, True, interval, 0.0, 0.0, "exact")
        if self.init == "relu":
            bound = 0.2785 / self.init_kwargs["gamma"]
            return ErrorBound("relu", False, interval, bound, bound, "analytic")
        err = self._computed_error(interval)
        real = max(err, self._computed_error((-50.0, 50.0)))
        return ErrorBound(self.init, False, interval, err, real, "computed")
