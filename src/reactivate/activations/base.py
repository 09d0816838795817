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
    "check_classic_kwargs",
    "check_interval",
    "relu_error",
    "plain_ops_requested",
    "CLASSIC_FUNCTIONS",
    "CLASSIC_KWARGS",
]

GRANULARITIES = ("layer", "channel", "neuron")


@dataclass(frozen=True)
class ErrorBound:
    """Error of an adaptive activation against the function it replaced.

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

# Keyword arguments each classic function accepts, as its torch.nn module
# names them.
CLASSIC_KWARGS: dict[str, tuple[str, ...]] = {
    "swish": ("slope",),
    "gelu": ("approximate",),
    "hardtanh": ("min_val", "max_val"),
    "leaky_relu": ("negative_slope",),
}

# Max of |z| sigmoid(-gamma |z|), the error of z sigmoid(gamma z) against
# ReLU: reached at |z| = RELU_ARGMAX / gamma where u sigmoid(u) = 1.
RELU_ARGMAX = 1.2784645427610738
RELU_ERROR = RELU_ARGMAX - 1.0


def classic_function(name: str, x: torch.Tensor, **kwargs: Any) -> torch.Tensor:
    """Apply the classic activation ``name`` (a torch name) to ``x``."""
    if name not in CLASSIC_FUNCTIONS:
        known = ", ".join(sorted(CLASSIC_FUNCTIONS))
        raise ValueError(f"unknown activation {name!r}; known activations: {known}")
    return CLASSIC_FUNCTIONS[name](x, **kwargs)


def _check_finite(name: str, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}={value!r} is invalid; give a finite number") from None
    if not math.isfinite(number):
        raise ValueError(f"{name}={value!r} is invalid; give a finite number")
    return number


def check_interval(interval: Any, name: str = "interval") -> tuple[float, float]:
    """Validate a ``(low, high)`` pair of finite numbers with ``low < high``."""
    try:
        low, high = interval
    except (TypeError, ValueError):
        raise ValueError(
            f"{name}={interval!r} is invalid; give (low, high), for example (-4.0, 4.0)"
        ) from None
    low = _check_finite(f"{name} low", low)
    high = _check_finite(f"{name} high", high)
    if not low < high:
        raise ValueError(
            f"{name}={tuple(interval)!r} is empty or reversed; give (low, high) with low < high"
        )
    return low, high


def check_classic_kwargs(init: str, kwargs: dict[str, Any], extra: Sequence[str] = ()) -> dict[str, Any]:
    """Validate the keyword arguments of classic function ``init``.

    ``extra`` lists family-specific keywords that are also accepted. Returns
    the classic keyword arguments with normalised values.
    """
    allowed = CLASSIC_KWARGS.get(init, ())
    unknown = sorted(set(kwargs) - set(allowed) - set(extra))
    if unknown:
        accepted = ", ".join([*extra, *allowed]) or "none"
        raise ValueError(
            f"unexpected keyword arguments {unknown} for init={init!r}; accepted: {accepted}"
        )
    out: dict[str, Any] = {}
    for key, value in kwargs.items():
        if key in extra:
            continue
        if key == "approximate":
            if value not in ("none", "tanh"):
                raise ValueError(f"approximate={value!r} is invalid; use 'none' or 'tanh' as torch.nn.GELU does")
            out[key] = value
        else:
            out[key] = _check_finite(key, value)
    if init == "hardtanh":
        low, high = out.get("min_val", -1.0), out.get("max_val", 1.0)
        if not low < high:
            raise ValueError(f"min_val={low!r} must be less than max_val={high!r} for init='hardtanh'")
    return out


def relu_error(gamma: float, interval: tuple[float, float]) -> float:
    """Return the max of ``|z sigmoid(gamma z) - relu(z)|`` over ``interval``.

    The error equals ``t sigmoid(-gamma t)`` with ``t = |z|``, which rises to
    ``0.2785 / gamma`` at ``t = 1.2785 / gamma`` and falls on both sides, so
    the max over an interval is at the admissible ``t`` nearest that peak.
    """
    low, high = interval
    if low <= 0.0 <= high:
        t_min, t_max = 0.0, max(-low, high)
    else:
        t_min, t_max = min(abs(low), abs(high)), max(abs(low), abs(high))
    t = min(max(RELU_ARGMAX / gamma, t_min), t_max)
    return t / (1.0 + math.exp(min(gamma * t, 700.0)))


def plain_ops_requested() -> bool:
    """Tell whether the caller traces or exports, so custom autograd functions must be avoided."""
    return (
        torch.jit.is_tracing()
        or torch.onnx.is_in_onnx_export()
        or torch.compiler.is_exporting()
    )


class AdaptiveActivation(nn.Module):
    """Base class of the adaptive activation families.

    Subclasses set ``family`` and ``supported_inits``, create their
    parameters in ``__init__`` with :meth:`_parameter_shape`, and implement
    :meth:`forward`, :meth:`reference_forward` and :meth:`error_bound`.

    Args:
        init: torch name of the classic function to reproduce at start.
        granularity: ``"layer"``, ``"channel"`` or ``"neuron"``. Default:
            ``"layer"``.
        shape: input shape without the batch dimension; required for
            ``"channel"`` (only ``shape[0]`` is used) and ``"neuron"``.
            Default: None.
    """

    family: ClassVar[str] = ""
    supported_inits: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        init: str,
        *,
        granularity: str = "layer",
        shape: Sequence[int] | int | None = None,
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
        if isinstance(shape, int) and not isinstance(shape, bool):
            shape = (shape,)
        if shape is not None:
            try:
                sizes = tuple(shape)
            except TypeError:
                sizes = None
            if (
                sizes is None
                or len(sizes) == 0
                or any(isinstance(s, bool) or not isinstance(s, int) or s <= 0 for s in sizes)
            ):
                raise ValueError(
                    f"shape={shape!r} is invalid; give the positive input sizes "
                    "without the batch dimension, for example shape=(64, 32, 32)"
                )
            shape = sizes
        elif granularity != "layer":
            raise ValueError(
                f"granularity={granularity!r} needs shape=, the input shape "
                "without the batch dimension, for example shape=(64, 32, 32)"
            )
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
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            kind = x.dtype if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(
                f"{type(self).__name__} expects a floating-point tensor, got {kind}"
            )
        if torch.jit.is_tracing():
            # A trace records one input shape anyway; comparing traced sizes
            # here would only emit TracerWarnings.
            return
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
        allowed = CLASSIC_KWARGS.get(self.init, ())
        return {k: v for k, v in self.init_kwargs.items() if k in allowed}

    def reference_forward(self, x: torch.Tensor) -> torch.Tensor:
        """Evaluate the textbook formula with plain tensor operations."""
        raise NotImplementedError

    def error_bound(self, interval: tuple[float, float] = (-4.0, 4.0)) -> ErrorBound:
        """Return how closely the start parameters reproduce the original."""
        raise NotImplementedError

    def _computed_error(self, interval: tuple[float, float], points: int = 200_001) -> float:
        """Measure the maximum absolute error on a dense float64 grid.

        The grid covers ``interval`` and, when it is wider than 1e3, adds the
        points +-1e30 for the limits at infinity. The measurement uses the
        start parameters (layer granularity), not the current ones.
        """
        low, high = check_interval(interval)
        start = self.start_copy(dtype=torch.float64)
        z = torch.linspace(low, high, points, dtype=torch.float64)
        if high - low > 1e3:
            z = torch.cat([z, torch.tensor([-1e30, 1e30], dtype=torch.float64)])
        with torch.no_grad():
            diff = start(z) - classic_function(
                self.init, z, **self._classic_kwargs()
            )
        return float(diff.abs().max())

    def start_copy(self, dtype: torch.dtype | None = None) -> "AdaptiveActivation":
        """Build a fresh layer-granularity module with the start parameters in ``dtype``."""
        return type(self)(init=self.init, dtype=dtype, **self.init_kwargs)

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
