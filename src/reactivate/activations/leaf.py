"""LEAF: the learnable extended activation function."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from . import kernels
from .ahaf import _parameter_dtype, _start_gamma, _start_kwargs
from .base import RELU_ERROR, AdaptiveActivation, ErrorBound, check_interval, plain_ops_requested, relu_error

__all__ = ["LEAF"]


class LEAF(AdaptiveActivation):
    r"""Learnable extended activation function.

    .. math::
        \text{LEAF}(z) = (p_1 z + p_2)\,\sigma(p_3 z) + p_4

    Start values that reproduce a classic function:

    ===============  ====  ====  ================  ====  ========================
    ``init``         p1    p2    p3                p4    max abs error
    ===============  ====  ====  ================  ====  ========================
    ``"silu"``       1     0     1                 0     exact
    ``"swish"``      1     0     ``slope`` (1)     0     exact
    ``"sigmoid"``    0     1     1                 0     exact
    ``"tanh"``       0     2     2                 -1    exact (tanh z =
                                                         2 sigma(2z) - 1)
    ``"relu"``       1     0     ``gamma`` (1e9)   0     0.2785 / gamma
    ``"gelu"``       1     0     1.702             0     0.0203 (``"none"``),
                                                         0.0207 (``"tanh"``)
    ===============  ====  ====  ================  ====  ========================

    "Exact" means equal up to float rounding: tanh through the sigmoid
    differs from ``torch.tanh`` by a few float32 ulps.

    Args:
        init: torch name of the function to reproduce: ``"silu"``,
            ``"swish"``, ``"sigmoid"``, ``"tanh"``, ``"relu"`` or
            ``"gelu"``. Default: ``"silu"``.
        granularity: ``"layer"``, ``"channel"`` or ``"neuron"``, as for
            :class:`AHAF`. Default: ``"layer"``.
        shape: input shape without the batch dimension; required unless
            ``granularity="layer"``. Default: None.
        gamma: start p3 for ``init="relu"``. Default: 1e9.
        slope: the swish slope for ``init="swish"``. Default: 1.0.
        approximate: GELU's ``approximate`` for ``init="gelu"``. Default:
            ``"none"``.
        device: device of the parameters. Default: None.
        dtype: dtype of the parameters. Default: None (float32).

    Shape:
        - Input: :math:`(N, *)`; for ``"channel"`` :math:`(N, C, *)`, for
          ``"neuron"`` :math:`(N, *\text{shape})`.
        - Output: same shape and dtype as the input.
        - ``p1``, ``p2``, ``p3``, ``p4``: :math:`()` for ``"layer"``,
          :math:`(C,)` for ``"channel"``, ``shape`` for ``"neuron"``.

    Example::

        >>> act = LEAF("tanh")
        >>> x = torch.randn(8, 16)
        >>> torch.allclose(act(x), torch.tanh(x), atol=1e-6)
        True

    .. note::
        As for AHAF, p3 = 1e9 (ReLU) makes ``d/dp3`` vanish in floating
        point, so fine-tuning moves p1, p2 and p4 only; a finite gamma such
        as 1e4 has error 2.8e-5. Half-precision inputs are computed in
        float32. Do not apply weight decay to p1..p4.
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
        approximate: str | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(init, granularity=granularity, shape=shape)
        self.init_kwargs = _start_kwargs(init, gamma=gamma, slope=slope, approximate=approximate)
        if init == "sigmoid":
            start = (0.0, 1.0, 1.0, 0.0)
        elif init == "tanh":
            start = (0.0, 2.0, 2.0, -1.0)
        else:
            start = (1.0, 0.0, _start_gamma(init, self.init_kwargs), 0.0)
        factory = {"device": device, "dtype": _parameter_dtype(dtype)}
        size = self._parameter_shape()
        self.p1 = nn.Parameter(torch.full(size, start[0], **factory))
        self.p2 = nn.Parameter(torch.full(size, start[1], **factory))
        self.p3 = nn.Parameter(torch.full(size, start[2], **factory))
        self.p4 = nn.Parameter(torch.full(size, start[3], **factory))

    def _parameters_for(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(self._broadcast(p, x) for p in (self.p1, self.p2, self.p3, self.p4))

    def reference_forward(self, x: torch.Tensor) -> torch.Tensor:
        """Evaluate ``(p1 x + p2) sigmoid(p3 x) + p4`` with plain tensor operations."""
        p1, p2, p3, p4 = self._parameters_for(x)
        return (p1 * x + p2) * torch.sigmoid(p3 * x) + p4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        p1, p2, p3, p4 = self.p1, self.p2, self.p3, self.p4
        ops = kernels.native_ops_for(x, p1, p2, p3, p4)
        if ops is not None:
            return ops.leaf(x, p1, p2, p3, p4)
        params = self._parameters_for(x)
        if plain_ops_requested():
            return kernels.leaf_forward(x, *params)
        return kernels.LEAFFunction.apply(x, *params)

    def error_bound(self, interval: tuple[float, float] = (-4.0, 4.0)) -> ErrorBound:
        """Return the max abs error of the start parameters against the original.

        Exact for silu, swish, sigmoid and tanh, analytic for relu
        (``0.2785 / gamma``), computed on a dense float64 grid for gelu.
        """
        interval = check_interval(interval)
        if self.init in ("silu", "swish", "sigmoid", "tanh"):
            return ErrorBound(self.init, True, interval, 0.0, 0.0, "exact")
        if self.init == "relu":
            gamma = self.init_kwargs["gamma"]
            return ErrorBound("relu", False, interval, relu_error(gamma, interval), RELU_ERROR / gamma, "analytic")
        err = self._computed_error(interval)
        real = max(err, self._computed_error((-1e4, 1e4), points=400_001))
        return ErrorBound(self.init, False, interval, err, real, "computed")
