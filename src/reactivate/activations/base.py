"""Base class shared by every adaptive activation family.

An adaptive activation stores the name of the classic function it was started
from (``init``), the keyword arguments of that start (``init_kwargs``), and a
granularity that decides how many parameter sets it keeps:

* ``"layer"``: one set shared by every element (works for any input size);
* ``"channel"``: one set per index of dimension 1 (any spatial size);
* ``"neuron"``: one set per non-batch element, as the published
  implementation does; the input shape is then fixed.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, ClassVar, Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "GRANULARITIES",
    "AdaptiveActivation",
    "ErrorBound",
    "classic_function",
    "CLASSIC_FUNCTIONS",
]

GRANULARITIES = ("layer", "channel", "neuron")


@dataclass(frozen=True)
class ErrorBound:
    """How closely an adaptive activation reproduces the function it replaced.

    Attributes:
        original: torch name of the replaced function, such as ``"relu"``.
        exact: True when the original is a special case of the family, so
            the only error is floating-point rounding.
        interval: the ``(low, high)`` range that ``max_abs_error`` covers.
        max_abs_error: maximum of ``|f_adaptive(z) - f_original(z)|`` over
            ``interval``.
        max_abs_error_real_line: the same maximum over every real ``z``;
            ``inf`` when the error grows without bound.
        method: ``"exact"``, ``"analytic"`` (a closed-form bound) or
            ``"computed"`` (measured on a dense grid in float64).
    """

    original: str
    exact: bool
    interval: tuple[float, float]
    max_abs_error: float
    max_abs_error_real_line: float
    method: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _swish(x: torch.Tensor, slope: float = 1.0) -> torch.Tensor:
    return x * torch.sigmoid(slope * x)


# Classic functions by their torch names. Each entry takes the input and the
# keyword arguments that the matching torch.nn module carries.
CLASSIC_FUNCTIONS = {
    "relu": lambda x: F.relu(x),
    "relu6": lambda x: F.relu6(x),
    "silu": lambda x: F.silu(x),
    "swish": lambda x, slope=1.0: _swish(x, slope),
    "tanh": lambda x: torch.tanh(x),
    "sigmoid": lambda x: torch.sigmoid(x),
    "gelu": lambda x, approximate="none": F.gelu(x, approximate=approximate),
    "hardtanh": lambda x, min_val=-1.0, max_val=1.0: F.hardtanh(x, min_val, max_val),
    "hardsigmoid": lambda x: F.hardsigmoid(x),
    "leaky_relu": lambda x, negative_slope=0.01: F.leaky_relu(x, negative_slope),
    "identity": lambda x: x,
}


def classic_function(name: str, x: torch.Tensor, **kwargs: Any) -> torch.Tensor:
    """Apply the classic activation ``name`` (a torch name) to ``x``."""
    if name not in CLASSIC_FUNCTIONS:
        known = ", ".join(sorted(CLASSIC_FUNCTIONS))
        raise ValueError(f"unknown activation {name!r}; known activations: {known}")
    return CLASSIC_FUNCTIONS[name](x, **kwargs)


def _check_finite(name: str, value: float) -> float:
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return value


class AdaptiveActivation(nn.Module):
    """Base class of the adaptive activation families.

    Subclasses set ``family`` and ``supported_inits``, create their
    parameters in ``__init__`` with :meth:`_parameter_shape`, and implement
    :meth:`forward`, :meth:`reference_forward` and :meth:`error_bound`.

    Args:
        init: torch name of the classic function to reproduce at start.
        granularity: ``"layer"``, ``"channel"`` or ``"neuron"``.
        shape: input shape without the batch dimension; required for
            ``"channel"`` (only ``shape[0]`` is used) and ``"neuron"``.
    """

    family: ClassVar[str] = ""
    supported_inits: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        init: str,
        *,
        granularity: str = "layer",
        shape: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(init, str) or init not in self.supported_inits:
            supported = ", ".join(self.supported_inits)
            raise ValueError(
                f"{type(self).__name__} cannot reproduce init={init!r}; "
                f"supported functions: {supported}"
            )
        if granularity not in GRANULARITIES:
            raise ValueError(
                f"granularity={granularity!r} is invalid; use one of "
                f"{', '.join(repr(g) for g in GRANULARITIES)}"
            )
        if granularity != "layer":
            if shape is None:
                raise ValueError(
                    f"granularity={granularity!r} needs shape=, the input shape "
                    "without the batch dimension, for example shape=(64, 32, 32)"
                )
            shape = tuple(int(s) for s in shape)
            if len(shape) == 0 or any(s <= 0 for s in shape):
                raise ValueError(
                    f"shape={shape!r} is invalid; give the positive input sizes "
                    "without the batch dimension, for example shape=(64, 32, 32)"
                )
        else:
            shape = tuple(int(s) for s in shape) if shape is not None else None
        self.init = init
        self.granularity = granularity
        self.shape = shape
        self.init_kwargs: dict[str, Any] = {}

    # -- shapes -------------------------------------------------------------

    def _parameter_shape(self) -> tuple[int, ...]:
        """Shape of one parameter tensor before any family-specific suffix."""
        if self.granularity == "layer":
            return ()
        if self.granularity == "channel":
            return (self.shape[0],)
        return tuple(self.shape)

    def _check_input(self, x: torch.Tensor) -> None:
        if self.granularity == "channel":
            if x.dim() < 2 or x.shape[1] != self.shape[0]:
                raise ValueError(
                    f"{type(self).__name__} has one parameter set per channel for "
                    f"{self.shape[0]} channels, but got an input of shape "
                    f"{tuple(x.shape)}; dimension 1 must have size {self.shape[0]}"
                )
        elif self.granularity == "neuron":
            if tuple(x.shape[1:]) != self.shape:
                raise ValueError(
                    f"{type(self).__name__} has one parameter set per neuron for "
                    f"inputs of shape (N, {', '.join(map(str, self.shape))}), but got "
                    f"{tuple(x.shape)}; use granularity='layer' or 'channel' for "
                    "inputs whose size changes"
                )

    def _broadcast(self, p: torch.Tensor, x: torch.Tensor, suffix: int = 0) -> torch.Tensor:
        """View parameter ``p`` so that it broadcasts against ``x``.

        ``suffix`` counts trailing family-specific dimensions of ``p`` (the
        F-neuron keeps one for its membership functions).
        """
        if self.granularity == "channel":
            trailing = x.dim() - 2
            head = p.shape[: p.dim() - suffix]
            tail = p.shape[p.dim() - suffix :]
            return p.reshape(*head, *([1] * trailing), *tail)
        return p

    # -- reproduction of the original --------------------------------------

    def original_forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the classic function this module was started from."""
        return classic_function(self.init, x, **self._classic_kwargs())

    def _classic_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of the classic function, taken from init_kwargs."""
        return {}

    def reference_forward(self, x: torch.Tensor) -> torch.Tensor:
        """Evaluate the textbook formula with plain tensor operations."""
        raise NotImplementedError

    def error_bound(self, interval: tuple[float, float] = (-4.0, 4.0)) -> ErrorBound:
        """Return how closely the start parameters reproduce the original."""
        raise NotImplementedError

    def _computed_error(self, interval: tuple[float, float], points: int = 200_001) -> float:
        """Measure the maximum absolute error on a dense float64 grid.

        The grid covers ``interval``, and the measurement uses the start
        parameters (layer granularity), not the current ones.
        """
        low, high = (_check_finite("interval low", interval[0]), _check_finite("interval high", interval[1]))
        if not low < high:
            raise ValueError(f"interval={interval!r} is empty or reversed; give (low, high) with low < high")
        start = self.start_copy().double()
        z = torch.linspace(low, high, points, dtype=torch.float64)
        with torch.no_grad():
            diff = start.reference_forward(z) - classic_function(
                self.init, z, **self._classic_kwargs()
            )
        return float(diff.abs().max())

    def start_copy(self) -> "AdaptiveActivation":
        """Build a fresh layer-granularity module with the start parameters."""
        return type(self)(init=self.init, **self.init_kwargs)

    # -- description --------------------------------------------------------

    def config(self) -> dict[str, Any]:
        """Return the JSON-serialisable arguments that rebuild this module."""
        return {
            "family": self.family,
            "init": self.init,
            "granularity": self.granularity,
            "shape": list(self.shape) if self.shape is not None else None,
            **self.init_kwargs,
        }

    def extra_repr(self) -> str:
        parts = [f"init={self.init!r}"]
        parts += [f"{k}={v!r}" for k, v in self.init_kwargs.items()]
        parts.append(f"granularity={self.granularity!r}")
        if self.granularity != "layer":
            parts.append(f"shape={self.shape}")
        return ", ".join(parts)
