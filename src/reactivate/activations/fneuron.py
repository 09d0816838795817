"""The F-neuron activation: a fuzzy, piecewise linear adaptive function."""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
from torch import nn

from . import kernels
from .ahaf import _parameter_dtype
from .base import (
    CLASSIC_FUNCTIONS,
    AdaptiveActivation,
    ErrorBound,
    check_classic_kwargs,
    check_interval,
    classic_function,
    plain_ops_requested,
)

__all__ = ["FNeuronActivation", "membership_functions"]

# Classic functions that stay bounded on the whole real line, so the constant
# continuation of the F-neuron beyond its interval has a finite error.
_BOUNDED = {"tanh", "sigmoid", "hardtanh", "relu6", "hardsigmoid"}


def membership_functions(z: torch.Tensor, low: float, high: float, num_functions: int) -> torch.Tensor:
    """Evaluate every membership function at ``z``; returns shape ``(*z.shape, m)``.

    The first function is a left ramp, the last a right ramp, and the ones in
    between are triangles of half-width ``h = (high - low) / (m - 1)``. This
    materialises ``m`` values per element; the module's forward never does.
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

    with a left ramp :math:`\mu_1`, triangles
    :math:`\mu_j(z) = \max(0, 1 - |z - c_j| / h)` and a right ramp
    :math:`\mu_m`. The sum equals linear interpolation of the weights ``p``
    at the centres ``c_j`` and is constant beyond ``[a, b]`` (the edge
    weight). Every classic function starts as ``p_j = f(c_j)``:

    ===============================  ==========================================
    ``init`` (keywords)              max abs error of the start weights
    ===============================  ==========================================
    ``"tanh"``                       m = 18 on [-4, 4]: 0.0191 (squared
                                     3.66e-4); 6.7e-4 beyond the interval
    ``"sigmoid"``                    m = 18 on [-4, 4]: 2.6e-3 inside, 0.018
                                     beyond the interval
    ``"hardtanh"`` (``min_val``,     exact when min_val and max_val are
    ``max_val``)                     centres, e.g. m = 9 on [-4, 4] (h = 1)
    ``"relu6"``                      exact when 0 and 6 are centres, e.g.
                                     m = 9 on [-1, 7]
    ``"hardsigmoid"``                exact when -3 and 3 are centres, e.g.
                                     m = 9 on [-4, 4] or m = 3 on [-3, 3]
    ``"relu"``, ``"leaky_relu"``     exact inside [a, b] when 0 is a centre
    (``negative_slope``),            (e.g. m = 9 on [-4, 4]); unbounded error
    ``"identity"``                   beyond b (and below a for the last two)
    ``"silu"``, ``"swish"``          approximate inside, unbounded beyond
    (``slope``), ``"gelu"``
    (``approximate``)
    ===============================  ==========================================

    :meth:`error_bound` measures these on a dense grid for the chosen ``m``
    and interval.

    Args:
        init: torch name of the function to reproduce. Default: ``"tanh"``.
        interval: ``(a, b)``, the range of the centres. Default: (-4.0, 4.0).
        num_functions: ``m``, the number of membership functions, at least
            2. Default: 18, the value used by Bodyanskiy and Kostiuk
            (ICST 2023).
        granularity: ``"layer"`` (one weight vector), ``"channel"`` (one per
            index of dimension 1) or ``"neuron"`` (one per non-batch
            element). Default: ``"layer"``.
        shape: input shape without the batch dimension; required unless
            ``granularity="layer"``. Default: None.
        device: device of the weights. Default: None.
        dtype: dtype of the weights. Default: None (float32).
        **classic_kwargs: keyword arguments of the classic function, as its
            torch.nn module names them (``min_val``, ``max_val``,
            ``negative_slope``, ``slope``, ``approximate``).

    Shape:
        - Input: :math:`(N, *)`; for ``"channel"`` :math:`(N, C, *)`, for
          ``"neuron"`` :math:`(N, *\text{shape})`.
        - Output: same shape and dtype as the input.
        - ``weight``: :math:`(m,)` for ``"layer"``, :math:`(C, m)` for
          ``"channel"``, :math:`(*\text{shape}, m)` for ``"neuron"``.

    Example::

        >>> act = FNeuronActivation("hardtanh", num_functions=9)
        >>> x = torch.randn(8, 16) * 3
        >>> (act(x) - torch.nn.functional.hardtanh(x)).abs().max() < 1e-6
        tensor(True)

    .. note::
        The forward pass reads only the two weights around each input, and
        backward keeps only the input, so time and memory do not grow with
        ``m``. Inputs beyond ``[a, b]`` (up to +-inf) give the edge weight
        with zero input gradient, so an unbounded original (relu, silu,
        gelu) is not followed there. Choose the interval from the observed
        activation range. Do not apply weight decay to ``weight``.
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
        classic = check_classic_kwargs(init, classic_kwargs)
        low, high = check_interval(interval)
        if isinstance(num_functions, bool) or not isinstance(num_functions, int) or num_functions < 2:
            raise ValueError(f"num_functions={num_functions!r} is invalid; give an integer of at least 2")
        self.interval = (low, high)
        self.num_functions = num_functions
        self.init_kwargs = {"interval": [low, high], "num_functions": num_functions, **classic}
        centres = torch.linspace(low, high, num_functions, dtype=torch.float64)
        start = classic_function(init, centres, **classic).to(_parameter_dtype(dtype))
        size = self._parameter_shape()
        self.weight = nn.Parameter(start.expand(*size, num_functions).clone().to(device=device))
        if granularity == "layer":
            self.offsets = None
        else:
            sets = math.prod(size)
            offsets = torch.arange(sets, device=device).reshape(size) * num_functions
            self.register_buffer("offsets", offsets, persistent=False)

    @property
    def step(self) -> float:
        """Distance ``h`` between neighbouring centres."""
        return (self.interval[1] - self.interval[0]) / (self.num_functions - 1)

    @property
    def centres(self) -> torch.Tensor:
        """Centres ``c_j`` of the membership functions, in float64."""
        return torch.linspace(*self.interval, self.num_functions, dtype=torch.float64)

    def reference_forward(self, x: torch.Tensor) -> torch.Tensor:
        """Evaluate the sum of weighted membership functions (materialises ``m`` per element)."""
        mu = membership_functions(x, *self.interval, self.num_functions)
        return (mu * self._broadcast(self.weight, x, suffix=1)).sum(-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        weight = self.weight
        low, inv_step = self.interval[0], 1.0 / self.step
        ops = kernels.native_ops_for(x, weight)
        if ops is not None:
            return ops.fneuron(x, weight, low, inv_step)
        offsets = None if self.offsets is None else self._broadcast(self.offsets, x)
        weight = self._broadcast(weight, x, suffix=1)
        if plain_ops_requested():
            return kernels.fneuron_forward(x, weight, offsets, low, inv_step)
        few_sets = self.granularity != "neuron"
        return kernels.FNeuronFunction.apply(x, weight, offsets, low, inv_step, few_sets)

    def error_bound(self, interval: tuple[float, float] | None = None) -> ErrorBound:
        """Return the max abs error of the start weights against the original.

        ``interval`` defaults to the module's own. Exact (up to float
        rounding) for hardtanh, relu6 and hardsigmoid when their kinks lie
        on centres; otherwise measured on a dense float64 grid. The error
        on the real line is ``inf`` for unbounded originals.
        """
        interval = self.interval if interval is None else check_interval(interval)
        kinks = self._kinks()
        if self.init in _BOUNDED and kinks is not None and self._on_centres(kinks):
            return ErrorBound(self.init, True, interval, 0.0, 0.0, "exact")
        err = self._computed_error(interval)
        if self.init in _BOUNDED:
            a, b = self.interval
            span = b - a
            real = max(err, self._computed_error((a - 100 * span, b + 100 * span), points=400_001))
        else:
            real = math.inf
        return ErrorBound(self.init, False, interval, err, real, "computed")

    def _kinks(self) -> list[float] | None:
        kwargs = self._classic_kwargs()
        if self.init == "hardtanh":
            return [kwargs.get("min_val", -1.0), kwargs.get("max_val", 1.0)]
        if self.init == "relu6":
            return [0.0, 6.0]
        if self.init == "hardsigmoid":
            return [-3.0, 3.0]
        return None

    def _on_centres(self, kinks: list[float]) -> bool:
        low, high = self.interval
        for k in kinks:
            if not low <= k <= high:
                return False
            pos = (k - low) / self.step
            if abs(pos - round(pos)) > 1e-9:
                return False
        return True
