"""The F-neuron activation: a fuzzy, piecewise linear adaptive function."""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
from torch import nn

from .base import CLASSIC_FUNCTIONS, AdaptiveActivation, ErrorBound, _check_finite, classic_function

__all__ = ["FNeuronActivation", "membership_functions"]

# Classic functions that stay bounded on the whole real line, so the constant
# continuation of the F-neuron beyond its interval has a finite error.
_BOUNDED = {"tanh", "sigmoid", "hardtanh", "relu6", "hardsigmoid"}
_CLASSIC_KEYS = {"min_val", "max_val", "slope", "approximate", "negative_slope"}


def membership_functions(z: torch.Tensor, low: float, high: float, num_functions: int) -> torch.Tensor:
    """Evaluate every membership function at ``z``; returns shape ``(*z.shape, m)``.

    The first function is a left ramp, the last a right ramp, and the ones in
    between are triangles of half-width ``h = (high - low) / (m - 1)``.
    """
    m = num_functions
    h = (high - low) / (m - 1)
    centres = low + h * torch.arange(m, dtype=z.dtype, device=z.device)
    mu = torch.clamp(1 - (z.unsqueeze(-1) - centres).abs() / h, min=0)
    left = torch.clamp((centres[1] - z) / h, 0, 1)
    right = torch.clamp((z - centres[-2]) / h, 0, 1)
    return torch.cat([left.unsqueeze(-1), mu[..., 1:-1], right.unsqueeze(-1)], dim=-1)


class FNeuronActivation(AdaptiveActivation):
    r"""Fuzzy F-neuron activation on ``m`` membership functions.

    .. math::
        f(z) = \sum_{j=1}^{m} p_j \, \mu_j(z),
        \quad c_j = a + (j - 1) h, \quad h = \frac{b - a}{m - 1}

    which equals linear interpolation of the weights ``p`` at the centres
    ``c_j`` and is constant beyond ``[a, b]``. Start values: ``p_j =
    f_original(c_j)``.

    Shape: input (N, *), output the same; ``weight`` has shape (m,) for
    "layer", (C, m) for "channel" and (*shape, m) for "neuron".
    """

    family = "fneuron"
    supported_inits = tuple(sorted(CLASSIC_FUNCTIONS))

    def __init__(
        self,
        init: str = "tanh",
        *,
        interval: tuple[float, float] = (-4.0, 4.0),
        num_functions: int = 18,
        granularity: str = "layer",
        shape: Sequence[int] | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        **classic_kwargs: Any,
    ) -> None:
        super().__init__(init, granularity=granularity, shape=shape)
        unknown = set(classic_kwargs) - _CLASSIC_KEYS
        if unknown:
            raise ValueError(
                f"unexpected keyword arguments {sorted(unknown)} for FNeuronActivation; "
                f"accepted: interval, num_functions, {', '.join(sorted(_CLASSIC_KEYS))}"
            )
        try:
            low, high = interval
        except (TypeError, ValueError):
            raise ValueError(f"interval={interval!r} is invalid; give (low, high), for example (-4.0, 4.0)") from None
        low = _check_finite("interval low", low)
        high = _check_finite("interval high", high)
        if not low < high:
            raise ValueError(f"interval={interval!r} is empty or reversed; give (low, high) with low < high")
        if isinstance(num_functions, bool) or not isinstance(num_functions, int) or num_functions < 2:
            raise ValueError(f"num_functions={num_functions!r} is invalid; give an integer of at least 2")
        self.interval = (low, high)
        self.num_functions = num_functions
        self.init_kwargs = {"interval": [low, high], "num_functions": num_functions, **classic_kwargs}
        centres = torch.linspace(low, high, num_functions, dtype=torch.float64)
        start = classic_function(init, centres, **classic_kwargs).to(dtype or torch.float32)
        size = self._parameter_shape()
        weight = start.expand(*size, num_functions).clone().to(device=device)
        self.weight = nn.Parameter(weight)

    @property
    def step(self) -> float:
        return (self.interval[1] - self.interval[0]) / (self.num_functions - 1)

    def _classic_kwargs(self):
        return {k: v for k, v in self.init_kwargs.items() if k in _CLASSIC_KEYS}

    def start_copy(self) -> "FNeuronActivation":
        kwargs = dict(self.init_kwargs)
        kwargs["interval"] = tuple(kwargs["interval"])
        return type(self)(init=self.init, **kwargs)

    def reference_forward(self, x: torch.Tensor) -> torch.Tensor:
        mu = membership_functions(x, *self.interval, self.num_functions)
        return (mu * self._broadcast(self.weight, x, suffix=1)).sum(-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        low, _ = self.interval
        m = self.num_functions
        pos = (x - low) / self.step
        index = pos.floor().clamp(0, m - 2)
        frac = (pos - index).clamp(0, 1)
        index = index.long()
        weight = self._broadcast(self.weight, x, suffix=1).expand(*x.shape, m)
        left = torch.gather(weight, -1, index.unsqueeze(-1)).squeeze(-1)
        right = torch.gather(weight, -1, (index + 1).unsqueeze(-1)).squeeze(-1)
        return left + (right - left) * frac

    def error_bound(self, interval=None) -> ErrorBound:
        interval = self.interval if interval is None else (float(interval[0]), float(interval[1]))
        if self.init == "hardtanh":
            kinks = [self._classic_kwargs().get("min_val", -1.0), self._classic_kwargs().get("max_val", 1.0)]
        elif self.init == "relu6":
            kinks = [0.0, 6.0]
        elif self.init == "hardsigmoid":
            kinks = [-3.0, 3.0]
        else:
            kinks = None
        err = self._computed_error(interval)
        if self.init in _BOUNDED:
            a, b = self.interval
            span = b - a
            real = max(err, self._computed_error((a - 100 * span, b + 100 * span), points=400_001))
        else:
            real = math.inf
        if kinks is not None and self._kinks_on_centres(kinks):
            return ErrorBound(self.init, True, interval, err, real, "exact")
        return ErrorBound(self.init, False, interval, err, real, "computed")

    def _kinks_on_centres(self, kinks: list[float]) -> bool:
        low, high = self.interval
        for k in kinks:
            if not low <= k <= high:
                return False
            pos = (k - low) / self.step
            if abs(pos - round(pos)) > 1e-9:
                return False
        return True

    def extra_repr(self) -> str:
        return super().extra_repr()
