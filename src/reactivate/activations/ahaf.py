"""AHAF: the adaptive hybrid activation function."""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from . import kernels
from .base import (
    RELU_ERROR,
    AdaptiveActivation,
    ErrorBound,
    _check_finite,
    check_classic_kwargs,
    check_interval,
    plain_ops_requested,
    relu_error,
)

__all__ = ["AHAF", "PAPER_RELU_GAMMA", "GELU_GAMMA"]

# Bodyanskiy and Kostiuk (ICST 2023) replace ReLU with gamma = 1e9; the
# error is then 0.2785 / gamma.
PAPER_RELU_GAMMA = 1e9
# z * sigmoid(1.702 z) is the usual sigmoid approximation of GELU.
GELU_GAMMA = 1.702


class AHAF(AdaptiveActivation):
    r"""Adaptive hybrid activation function.

    .. math::
        \text{AHAF}(z) = \beta \, z \, \sigma(\gamma z)

    Start values that reproduce a classic function:

    =====================  ======  ==================  ==========================
    ``init``               beta    gamma               max abs error
    =====================  ======  ==================  ==========================
    ``"silu"``             1       1                   exact
    ``"swish"``            1       ``slope`` (1)       exact
    ``"relu"``             1       ``gamma`` (1e9)     0.2785 / gamma, at
                                                       z = -1.2785 / gamma
    ``"gelu"``             1       1.702               0.0203 (``"none"``),
                                                       0.0207 (``"tanh"``)
    =====================  ======  ==================  ==========================

    Args:
        init: torch name of the function to reproduce: ``"silu"``,
            ``"swish"``, ``"relu"`` or ``"gelu"``. Default: ``"silu"``.
        granularity: ``"layer"`` (one shared beta and gamma), ``"channel"``
            (one pair per index of dimension 1) or ``"neuron"`` (one pair
            per non-batch element). Default: ``"layer"``.
        shape: input shape without the batch dimension; required unless
            ``granularity="layer"``. Default: None.
        gamma: start gamma for ``init="relu"``. Default: 1e9, the value used by Bodyanskiy and
            Kostiuk (ICST 2023).
        slope: the swish slope for ``init="swish"``. Default: 1.0.
        approximate: GELU's ``approximate`` (``"none"`` or ``"tanh"``) for
            ``init="gelu"``; both start at gamma = 1.702. Default: ``"none"``.
        device: device of the parameters. Default: None (the current
            default device).
        dtype: dtype of the parameters. Default: None (float32).

    Shape:
        - Input: :math:`(N, *)`; for ``"channel"`` :math:`(N, C, *)`, for
          ``"neuron"`` :math:`(N, *\text{shape})`.
        - Output: same shape and dtype as the input.
        - ``beta``, ``gamma``: :math:`()` for ``"layer"``, :math:`(C,)` for
          ``"channel"``, ``shape`` for ``"neuron"``.

    Example::

        >>> act = AHAF("relu", gamma=1e4)
        >>> x = torch.randn(8, 16)
        >>> (act(x) - torch.relu(x)).abs().max() <= 2.8e-5
        tensor(True)

    .. note::
        With gamma = 1e9, ``d/dgamma = beta z^2 sigma'(gamma z)`` is 0 in
        floating point except within about 1e-7 of 0, so fine-tuning an
        AHAF started as ReLU moves beta only. A finite gamma such as 1e4
        (max abs error 2.8e-5) keeps gamma trainable. Inputs in float16 or
        bfloat16 are computed in float32 so that gamma = 1e9 cannot
        overflow; after ``module.half()`` gamma itself becomes inf, and the
        output stays finite (0 at z = 0). Do not apply weight decay to
        beta and gamma: it pulls them away from the reproduced function.
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
        approximate: str | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(init, granularity=granularity, shape=shape)
        self.init_kwargs = _start_kwargs(init, gamma=gamma, slope=slope, approximate=approximate)
        gamma0 = _start_gamma(init, self.init_kwargs)
        factory = {"device": device, "dtype": _parameter_dtype(dtype)}
        size = self._parameter_shape()
        self.beta = nn.Parameter(torch.ones(size, **factory))
        self.gamma = nn.Parameter(torch.full(size, gamma0, **factory))

    def reference_forward(self, x: torch.Tensor) -> torch.Tensor:
        """Evaluate ``beta * x * sigmoid(gamma * x)`` with plain tensor operations."""
        beta = self._broadcast(self.beta, x)
        gamma = self._broadcast(self.gamma, x)
        return beta * x * torch.sigmoid(gamma * x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        beta, gamma = self.beta, self.gamma
        ops = kernels.native_ops_for(x, beta, gamma)
        if ops is not None:
            return ops.ahaf(x, beta, gamma)
        beta = self._broadcast(beta, x)
        gamma = self._broadcast(gamma, x)
        if plain_ops_requested():
            return kernels.ahaf_forward(x, beta, gamma)
        return kernels.AHAFFunction.apply(x, beta, gamma)

    def error_bound(self, interval: tuple[float, float] = (-4.0, 4.0)) -> ErrorBound:
        """Return the max abs error of the start parameters against the original.

        Exact for silu and swish, analytic for relu (``0.2785 / gamma`` on the
        real line), computed on a dense float64 grid for gelu.
        """
        interval = check_interval(interval)
        if self.init in ("silu", "swish"):
            return ErrorBound(self.init, True, interval, 0.0, 0.0, "exact")
        if self.init == "relu":
            gamma = self.init_kwargs["gamma"]
            return ErrorBound("relu", False, interval, relu_error(gamma, interval), RELU_ERROR / gamma, "analytic")
        err = self._computed_error(interval)
        real = max(err, self._computed_error((-1e4, 1e4), points=400_001))
        return ErrorBound(self.init, False, interval, err, real, "computed")


def _parameter_dtype(dtype: torch.dtype | None) -> torch.dtype:
    if dtype is None:
        return torch.float32
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"dtype={dtype!r} is invalid; give a floating-point dtype such as torch.float32")
    return dtype


def _start_kwargs(init: str, *, gamma: Any, slope: Any, approximate: Any) -> dict[str, Any]:
    """Validate the start keywords of AHAF and LEAF and return init_kwargs."""
    passed = {k: v for k, v in {"gamma": gamma, "slope": slope, "approximate": approximate}.items() if v is not None}
    if "gamma" in passed and init != "relu":
        raise ValueError(f"gamma={gamma!r} applies only to init='relu', not init={init!r}")
    kwargs = check_classic_kwargs(init, passed, extra=("gamma",) if init == "relu" else ())
    if init == "relu":
        value = PAPER_RELU_GAMMA if gamma is None else _check_finite("gamma", gamma)
        if value <= 0:
            raise ValueError(f"gamma={value!r} is invalid for init='relu'; give a positive number such as 1e4")
        return {"gamma": value}
    if init == "swish":
        return {"slope": kwargs.get("slope", 1.0)}
    if init == "gelu":
        return {"approximate": kwargs.get("approximate", "none")}
    return {}


def _start_gamma(init: str, init_kwargs: dict[str, Any]) -> float:
    if init == "relu":
        return init_kwargs["gamma"]
    if init == "swish":
        return init_kwargs["slope"]
    if init == "gelu":
        return GELU_GAMMA
    return 1.0
