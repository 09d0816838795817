"""Fused forward and backward kernels of the adaptive activations.

Each family has pure ``*_forward`` / ``*_backward`` helpers written with
tensor operations, and a thin :class:`torch.autograd.Function` around them
that saves only the input and the parameters. The backward pass recomputes
the intermediate values from the input, so training keeps one input-sized
tensor per activation instead of the several that plain autograd keeps.
The modules call :func:`ahaf`, :func:`leaf` and :func:`fneuron`, which pick
the backend for each call.

Parameters reach the kernels already viewed so that they broadcast against
the input: shape ``()`` for one shared set, ``(C, 1, ..., 1)`` for one set per
channel, and the input shape without the batch dimension for one set per
neuron. Parameter gradients are reduced back with ``sum_to_size``.

Half-precision inputs (float16, bfloat16) are computed in float32 and the
result is cast back, so a large slope such as gamma = 1e9 cannot overflow.

Backends:

* ``"eager"`` (the default): plain PyTorch operations, no compilation, works
  on every device;
* ``"compiled"``: the helpers through :func:`torch.compile`, compiled lazily
  on first use (seconds per new input shape) and fused into a few loops. The
  F-neuron then uses its gather-free "hinge" form for layer and channel
  granularity. A helper that fails to compile falls back to eager with a
  warning;
* ``"native"``: fused C++ CPU kernels (:mod:`reactivate.activations.native`),
  one OpenMP pass for forward and one for backward, built with the system
  C++ compiler on first use (34 s on a 2-core machine, once per machine
  because torch caches the build).
  ``set_backend("native")`` builds at once and raises
  :class:`~reactivate.activations.native.NativeBuildError` on failure. Only
  float32 and float64 CPU inputs with parameters of the same dtype take
  the native kernels; CUDA and half-precision inputs use the eager path.
  Their backward is not differentiable again, so ``create_graph=True``
  raises an error;
* ``"auto"``: ``"native"`` when the kernels build, else ``"eager"`` with one
  warning.

Eager is the default because it costs no compilation time and needs no C++
compiler. On a 2-core CPU the native backend ran 2-9x faster than eager
(see benchmarks/results/activations.md). Select a backend with
:func:`set_backend` or the environment variable ``REACTIVATE_KERNELS``.
Tracing, export and :func:`torch.compile` never see the native kernels: the
modules switch to plain operations when tracing or exporting, and inside
:func:`torch.compile` the Python helpers run (the hinge form for the
F-neuron) so that the outer compilation traces and fuses them.
"""

from __future__ import annotations

import os
import warnings
from typing import Callable

import torch

from . import native

__all__ = [
    "BACKENDS",
    "get_backend",
    "set_backend",
    "compute_dtype",
    "ahaf_forward",
    "ahaf_backward",
    "leaf_forward",
    "leaf_backward",
    "fneuron_forward",
    "fneuron_backward",
    "fneuron_backward_elementwise",
    "fneuron_weight_grad",
    "fneuron_forward_hinge",
    "fneuron_backward_hinge",
    "native_ops_for",
    "AHAFFunction",
    "LEAFFunction",
    "FNeuronFunction",
    "ahaf",
    "leaf",
    "fneuron",
]

BACKENDS = ("eager", "compiled", "native", "auto")

_backend = os.environ.get("REACTIVATE_KERNELS", "eager")
if _backend not in BACKENDS:
    raise ValueError(
        f"REACTIVATE_KERNELS={_backend!r} is invalid; use one of {', '.join(BACKENDS)}"
    )
_compiled_cache: dict[str, Callable] = {}
# False once "auto" failed to build the native kernels, so it warns only once.
_auto_native_ok = True


def set_backend(backend: str) -> None:
    """Select how the kernels run: ``"eager"`` (default), ``"compiled"``, ``"native"`` or ``"auto"``.

    ``"native"`` compiles the C++ kernels now if they are not built yet and
    raises :class:`~reactivate.activations.native.NativeBuildError` when that
    fails. ``"auto"`` builds them on the first CPU call and falls back to
    ``"eager"`` with one warning.
    """
    global _backend
    if backend not in BACKENDS:
        raise ValueError(f"backend={backend!r} is invalid; use one of {', '.join(BACKENDS)}")
    if backend == "native":
        native.load()
    _backend = backend


def get_backend() -> str:
    """Return the selected kernel backend."""
    return _backend


def _run(helper: Callable, *args):
    """Call ``helper`` eagerly or through its lazily compiled version."""
    if _backend != "compiled" or torch.compiler.is_compiling():
        return helper(*args)
    name = helper.__name__
    compiled = _compiled_cache.get(name)
    if compiled is None:
        compiled = torch.compile(helper, dynamic=None)
        _compiled_cache[name] = compiled
    if compiled is helper:
        return helper(*args)
    try:
        return compiled(*args)
    except Exception as error:  # noqa: BLE001 - any compiler failure falls back to eager
        warnings.warn(
            f"torch.compile failed for {name} ({type(error).__name__}: {error}); "
            "using the eager kernel from now on",
            RuntimeWarning,
            stacklevel=3,
        )
        _compiled_cache[name] = helper
        return helper(*args)


def compute_dtype(x: torch.Tensor, *params: torch.Tensor) -> torch.dtype:
    """Return the dtype the kernels compute in: at least float32."""
    dtype = x.dtype
    for p in params:
        dtype = torch.promote_types(dtype, p.dtype)
    if dtype in (torch.float16, torch.bfloat16):
        return torch.float32
    return dtype


def _finite_max(dtype: torch.dtype) -> float:
    return torch.finfo(dtype).max


# -- AHAF: beta * x * sigmoid(gamma * x) -------------------------------------


def ahaf_forward(x: torch.Tensor, beta: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
    """Evaluate ``beta * x * sigmoid(gamma * x)`` in the input's dtype."""
    dtype = compute_dtype(x, beta, gamma)
    big = _finite_max(dtype)
    xc = x.to(dtype)
    # A gamma that overflowed to inf (gamma = 1e9 after module.half()) is
    # clamped, so that gamma * 0 stays 0 instead of inf * 0 = NaN.
    gamma_c = gamma.to(dtype).clamp(-big, big)
    s = torch.sigmoid(gamma_c * xc)
    return (beta.to(dtype) * xc * s).to(x.dtype)


def ahaf_backward(
    grad: torch.Tensor, x: torch.Tensor, beta: torch.Tensor, gamma: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Return the gradients of AHAF with respect to ``x``, ``beta`` and ``gamma``.

    With ``s = sigmoid(gamma x)``: ``d/dx = beta (s + gamma x s (1 - s))``,
    ``d/dbeta = x s`` and ``d/dgamma = beta x^2 s (1 - s)``.
    """
    dtype = compute_dtype(x, beta, gamma)
    big = _finite_max(dtype)
    xc = x.to(dtype)
    g = grad.to(dtype)
    b = beta.to(dtype)
    c = gamma.to(dtype).clamp(-big, big)
    s = torch.sigmoid(c * xc)
    ds = torch.sub(1, s).mul_(s)
    gx = g * xc
    grad_beta = (gx * s).sum_to_size(beta.shape)
    # u = x s (1 - s). beta is constant over the summed dimensions, so it
    # multiplies the sum instead of every element.
    u = ds.mul_(xc)
    grad_gamma = (gx * u).sum_to_size(gamma.shape).mul_(b)
    # gamma * u stays finite even for a clamped gamma = inf, because u is 0
    # wherever |gamma x| exceeds about 104.
    grad_x = u.mul_(c).add_(s).mul_(g).mul_(b)
    return grad_x.to(x.dtype), grad_beta.to(beta.dtype), grad_gamma.to(gamma.dtype)


class AHAFFunction(torch.autograd.Function):
    """Autograd function of AHAF that saves only the input and the parameters.

    Its separate ``setup_context`` and generated vmap rule let
    :func:`torch.func.grad`, :func:`torch.func.vjp` and
    :func:`torch.func.vmap` run it; forward-mode AD is not supported.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(x: torch.Tensor, beta: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
        return _run(ahaf_forward, x, beta, gamma)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        ctx.save_for_backward(*inputs)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, beta, gamma = ctx.saved_tensors
        return _run(ahaf_backward, grad, x, beta, gamma)


# -- LEAF: (p1 * x + p2) * sigmoid(p3 * x) + p4 -----------------------------


def leaf_forward(
    x: torch.Tensor, p1: torch.Tensor, p2: torch.Tensor, p3: torch.Tensor, p4: torch.Tensor
) -> torch.Tensor:
    """Evaluate ``(p1 x + p2) sigmoid(p3 x) + p4`` in the input's dtype."""
    dtype = compute_dtype(x, p1, p2, p3, p4)
    big = _finite_max(dtype)
    xc = x.to(dtype)
    s = torch.sigmoid(p3.to(dtype).clamp(-big, big) * xc)
    return ((p1.to(dtype) * xc + p2.to(dtype)) * s + p4.to(dtype)).to(x.dtype)


def leaf_backward(
    grad: torch.Tensor,
    x: torch.Tensor,
    p1: torch.Tensor,
    p2: torch.Tensor,
    p3: torch.Tensor,
    p4: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Return the gradients of LEAF with respect to ``x`` and ``p1``..``p4``.

    With ``s = sigmoid(p3 x)`` and ``u = p1 x + p2``: ``d/dx = p1 s + u p3 s
    (1 - s)``, ``d/dp1 = x s``, ``d/dp2 = s``, ``d/dp3 = u x s (1 - s)`` and
    ``d/dp4 = 1``.
    """
    dtype = compute_dtype(x, p1, p2, p3, p4)
    big = _finite_max(dtype)
    xc = x.to(dtype)
    g = grad.to(dtype)
    a1, a2 = p1.to(dtype), p2.to(dtype)
    a3 = p3.to(dtype).clamp(-big, big)
    z = (a3 * xc).clamp_(-big, big)
    s = torch.sigmoid(z)
    gs = g * s
    grad_p1 = (gs * xc).sum_to_size(p1.shape)
    grad_p2 = gs.sum_to_size(p2.shape)
    grad_p4 = g.sum_to_size(p4.shape)
    gds = torch.sub(1, s).mul_(s).mul_(g)
    u = torch.mul(xc, a1).add_(a2)
    grad_p3 = (gds * u).mul_(xc).sum_to_size(p3.shape)
    # d/dx = p1 g s + g s (1 - s) (p1 z + p2 p3). The product p2 * p3 is
    # taken as 0 when p2 is 0, so that p3 = inf (gamma = 1e9 after
    # module.half()) gives no 0 * inf, and z * g s (1 - s) is formed before
    # the factor p1, so that it is 0, not inf * 0, where s (1 - s) is 0.
    p2p3 = torch.where(a2 == 0, torch.zeros_like(a2), a2 * a3).clamp(-big, big)
    # gs may be grad_p2 itself (no reduction for a 0-dim input), so it is not changed in place.
    grad_x = z.mul_(gds).mul_(a1).addcmul_(gds, p2p3).add_(gs * a1)
    return (
        grad_x.to(x.dtype),
        grad_p1.to(p1.dtype),
        grad_p2.to(p2.dtype),
        grad_p3.to(p3.dtype),
        grad_p4.to(p4.dtype),
    )


class LEAFFunction(torch.autograd.Function):
    """Autograd function of LEAF that saves only the input and the parameters.

    Runs under :mod:`torch.func` transforms as :class:`AHAFFunction` does.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(x, p1, p2, p3, p4) -> torch.Tensor:
        return _run(leaf_forward, x, p1, p2, p3, p4)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        ctx.save_for_backward(*inputs)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return _run(leaf_backward, grad, *ctx.saved_tensors)


# -- F-neuron: linear interpolation of weights at evenly spaced centres ------
#
# With centres c_j = low + j h (j = 0..m-1), the sum of the membership
# functions equals p_k + (p_{k+1} - p_k) t, where k = floor((x - low) / h)
# clamped to [0, m - 2] and t = (x - low) / h - k clamped to [0, 1]. Only the
# two neighbouring weights of each element are read, never m of them.
#
# ``offsets`` contains the flat position of each parameter set's first weight
# (a long tensor that broadcasts against the input), or is None when all
# elements share one set.


def _fneuron_position(x: torch.Tensor, low: float, inv_step: float, m: int, dtype: torch.dtype):
    """Return the scaled position, the left centre's index and the fraction towards the right one."""
    pos = x.to(dtype).mul(inv_step).sub_(low * inv_step)
    # NaN inputs take index 0 so that indexing stays valid; their fraction
    # stays NaN, so the output is NaN as well.
    index = pos.floor().nan_to_num_(nan=0.0).clamp_(0, m - 2)
    frac = torch.sub(pos, index).clamp_(0, 1)
    return pos, index.long(), frac


def _slopes(weight: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Return ``p_{j+1} - p_j`` per weight, flattened, with a 0 after each set's last weight."""
    w = weight.to(dtype)
    return torch.nn.functional.pad(w[..., 1:] - w[..., :-1], (0, 1)).reshape(-1)


def fneuron_forward(
    x: torch.Tensor, weight: torch.Tensor, offsets: torch.Tensor | None, low: float, inv_step: float
) -> torch.Tensor:
    """Evaluate the F-neuron by interpolating ``weight`` (shape ``(*sets, m)``)."""
    m = weight.shape[-1]
    dtype = compute_dtype(x, weight)
    _, index, frac = _fneuron_position(x, low, inv_step, m, dtype)
    key = index if offsets is None else index + offsets
    left = weight.to(dtype).reshape(-1)[key]
    # Out of place: with a 0-d input, indexing returns a view of the weight.
    return left.addcmul(_slopes(weight, dtype)[key], frac).to(x.dtype)


def fneuron_backward_elementwise(
    grad: torch.Tensor,
    x: torch.Tensor,
    weight: torch.Tensor,
    offsets: torch.Tensor | None,
    low: float,
    inv_step: float,
    needs_weight_grad: bool = True,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """Return ``d/dx``, and the flat weight index and ``grad * t`` of each element.

    ``d/dx = (p_{k+1} - p_k) / h`` inside ``[low, high]`` and 0 outside.
    """
    m = weight.shape[-1]
    dtype = compute_dtype(x, weight)
    g = grad.to(dtype)
    pos, index, frac = _fneuron_position(x, low, inv_step, m, dtype)
    key = index if offsets is None else index + offsets
    outside = (pos < 0).logical_or_(pos > m - 1)
    grad_x = (_slopes(weight, dtype) * inv_step)[key].mul_(g).masked_fill_(outside, 0.0).to(x.dtype)
    if not needs_weight_grad:
        return grad_x, None, None
    return grad_x, key.expand(g.shape), frac.mul_(g)


def fneuron_weight_grad(grad: torch.Tensor, key: torch.Tensor, grad_frac: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Sum ``grad * mu_j(x)`` into the weights with two scatter-adds.

    Each element adds ``grad * (1 - t)`` to its left weight and ``grad * t``
    to its right one, written as ``A - B + shift(B)`` with ``A`` the sum of
    ``grad`` and ``B`` the sum of ``grad * t`` per left weight. Scatter-adds
    into a few bins stay eager because compiled atomic adds on the CPU were
    slower in this library's benchmark.
    """
    # NOTE: on CUDA scatter_add_ accumulates with atomic adds, so the float
    # sums may differ in the last bits from run to run.
    dtype = grad_frac.dtype
    bins = weight.numel()
    key = key.reshape(-1)
    total = torch.zeros(bins, dtype=dtype, device=grad.device).scatter_add_(0, key, grad.to(dtype).reshape(-1))
    right = torch.zeros(bins, dtype=dtype, device=grad.device).scatter_add_(0, key, grad_frac.reshape(-1))
    # The right share of bin k belongs to weight k + 1. Bin m - 1 of each
    # set never receives a left index, so the shift never crosses sets.
    total.sub_(right)[1:].add_(right[:-1])
    return total.reshape(weight.shape).to(weight.dtype)


def fneuron_backward(
    grad: torch.Tensor,
    x: torch.Tensor,
    weight: torch.Tensor,
    offsets: torch.Tensor | None,
    low: float,
    inv_step: float,
    needs_weight_grad: bool = True,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Return the gradients of the F-neuron with respect to ``x`` and ``weight``."""
    grad_x, key, grad_frac = _run(
        fneuron_backward_elementwise, grad, x, weight, offsets, low, inv_step, needs_weight_grad
    )
    grad_weight = fneuron_weight_grad(grad, key, grad_frac, weight) if needs_weight_grad else None
    return grad_x, grad_weight


# Compiled F-neuron kernels in "hinge" form: with r_j = clamp(pos - j, 0, 1),
# f = p_0 + sum_j (p_{j+1} - p_j) r_j. This costs m - 1 clamps per element but
# needs no gather or scatter, so torch.compile turns it into vectorised loops
# with in-register reductions. In benchmarks/bench_activations.py on a 2-core
# CPU it ran about 2x faster than the compiled gather and scatter form for
# m = 18 on a 64x32x32x32 input.
HINGE_MAX_FUNCTIONS = 32


def fneuron_forward_hinge(x: torch.Tensor, weight: torch.Tensor, low: float, inv_step: float) -> torch.Tensor:
    """Evaluate the F-neuron as a sum of clamped ramps; ``weight`` broadcasts as ``(..., m)``."""
    m = weight.shape[-1]
    dtype = compute_dtype(x, weight)
    w = weight.to(dtype)
    slope = w[..., 1:] - w[..., :-1]
    pos = (x.to(dtype) - low) * inv_step
    y = w[..., 0] + slope[..., 0] * pos.clamp(0, 1)
    for j in range(1, m - 1):
        y = y + slope[..., j] * (pos - j).clamp(0, 1)
    return y.to(x.dtype)


def fneuron_backward_hinge(
    grad: torch.Tensor, x: torch.Tensor, weight: torch.Tensor, low: float, inv_step: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return the gradients of :func:`fneuron_forward_hinge` for ``x`` and ``weight``.

    ``d/dx`` is the slope of the bin that contains ``x`` (0 outside the
    interval). With ``S_j = sum grad * r_j``, ``d/dp_0 = sum grad - S_0``,
    ``d/dp_j = S_{j-1} - S_j`` and ``d/dp_{m-1} = S_{m-2}``.
    """
    m = weight.shape[-1]
    dtype = compute_dtype(x, weight)
    w = weight.to(dtype)
    slope = w[..., 1:] - w[..., :-1]
    g = grad.to(dtype)
    pos = (x.to(dtype) - low) * inv_step
    set_shape = weight.shape[:-1]
    grad_x = torch.zeros_like(g)
    sums = []
    for j in range(m - 1):
        t = pos - j
        # Bin j is [j, j + 1); the last bin also takes the right end.
        in_bin = (t >= 0) & ((t < 1) if j < m - 2 else (t <= 1))
        grad_x = grad_x + torch.where(in_bin, slope[..., j], 0.0)
        sums.append((g * t.clamp(0, 1)).sum_to_size(set_shape))
    ramp = torch.stack(sums, dim=-1)
    total = g.sum_to_size(set_shape).unsqueeze(-1)
    grad_weight = torch.cat([total - ramp[..., :1], ramp[..., :-1] - ramp[..., 1:], ramp[..., -1:]], dim=-1)
    return (grad_x * g * inv_step).to(x.dtype), grad_weight.to(weight.dtype)


def _use_hinge(weight: torch.Tensor, few_sets: bool) -> bool:
    compiling = _backend == "compiled" or torch.compiler.is_compiling()
    return compiling and few_sets and weight.shape[-1] <= HINGE_MAX_FUNCTIONS


class FNeuronFunction(torch.autograd.Function):
    """Autograd function of the F-neuron that saves only the input and the weights.

    ``weight`` is the weight viewed to broadcast against ``x`` with the
    membership functions last: ``(m,)``, ``(C, 1, ..., 1, m)`` or
    ``(*shape, m)``. Eager runs use the gather and scatter form. Compiled
    runs use the hinge form when ``m <= 32`` and ``few_sets`` is True (one
    set per layer or per channel). With one set per neuron, the hinge
    form's many small reductions were slower than the scatter. Runs under
    :mod:`torch.func` transforms as :class:`AHAFFunction` does.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(x, weight, offsets, low: float, inv_step: float, few_sets: bool = True) -> torch.Tensor:
        if _use_hinge(weight, few_sets):
            return _run(fneuron_forward_hinge, x, weight, low, inv_step)
        return _run(fneuron_forward, x, weight, offsets, low, inv_step)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        x, weight, offsets, low, inv_step, few_sets = inputs
        ctx.save_for_backward(x, weight, offsets)
        ctx.low = low
        ctx.inv_step = inv_step
        ctx.few_sets = few_sets

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, weight, offsets = ctx.saved_tensors
        if _use_hinge(weight, ctx.few_sets):
            grad_x, grad_weight = _run(fneuron_backward_hinge, grad, x, weight, ctx.low, ctx.inv_step)
            return grad_x, grad_weight, None, None, None, None
        grad_x, grad_weight = fneuron_backward(
            grad, x, weight, offsets, ctx.low, ctx.inv_step, ctx.needs_input_grad[1]
        )
        return grad_x, grad_weight, None, None, None, None


# -- backend dispatch --------------------------------------------------------


def _functorch_wrapped(x: torch.Tensor) -> bool:
    """Tell whether ``x`` is a tensor wrapped by a :mod:`torch.func` transform."""
    check = getattr(torch._C._functorch, "is_functorch_wrapped_tensor", None)
    return check is not None and check(x)


def _load_native():
    """Build or load the native kernels on the first native call of the process.

    Returns ``torch.ops.reactivate_native``, or None when the ``"auto"``
    backend cannot build them. In that case it warns once, and eager is used
    from then on.
    """
    global _auto_native_ok
    if _backend == "native":
        return native.load()
    if not _auto_native_ok:
        return None
    try:
        return native.load()
    except native.NativeBuildError as error:
        _auto_native_ok = False
        warnings.warn(f"{error}; the 'auto' backend uses the eager kernels instead", RuntimeWarning, stacklevel=4)
        return None


def native_ops_for(x: torch.Tensor, *params: torch.Tensor):
    """Return ``torch.ops.reactivate_native`` when this call runs on the native kernels, else None.

    Every forward pass calls this first, so the usual "no" comes from a
    string comparison and a few flag reads. Tracing, :func:`torch.compile`,
    :func:`torch.export` (which both ONNX exporters go through) and
    :mod:`torch.func` transforms always get None: they need the plain or
    eager operations, because the C++ kernels are opaque to tracing and
    cannot read wrapped tensors. ``params`` may have any of the modules'
    own shapes, because the native ops read the parameter layout from the
    number of sets.
    """
    if _backend == "eager" or _backend == "compiled":
        return None
    if torch.jit.is_tracing() or torch.compiler.is_compiling() or torch.compiler.is_exporting():
        return None
    if _functorch_wrapped(x) or not native.supports(x, *params):
        return None
    ops = native.loaded_ops()
    return ops if ops is not None else _load_native()


def ahaf(x: torch.Tensor, beta: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
    """Apply AHAF with autograd on the selected backend; parameters broadcast against ``x``."""
    ops = native_ops_for(x, beta, gamma)
    if ops is not None:
        return ops.ahaf(x, beta, gamma)
    return AHAFFunction.apply(x, beta, gamma)


def leaf(x: torch.Tensor, p1: torch.Tensor, p2: torch.Tensor, p3: torch.Tensor, p4: torch.Tensor) -> torch.Tensor:
    """Apply LEAF with autograd on the selected backend; parameters broadcast against ``x``."""
    ops = native_ops_for(x, p1, p2, p3, p4)
    if ops is not None:
        return ops.leaf(x, p1, p2, p3, p4)
    return LEAFFunction.apply(x, p1, p2, p3, p4)


def fneuron(
    x: torch.Tensor,
    weight: torch.Tensor,
    offsets: torch.Tensor | None,
    low: float,
    inv_step: float,
    few_sets: bool = True,
) -> torch.Tensor:
    """Apply the F-neuron with autograd on the selected backend.

    Arguments as for :class:`FNeuronFunction`; the native kernels read the
    weight layout from ``weight`` and do not need ``offsets``.
    """
    ops = native_ops_for(x, weight)
    if ops is not None:
        return ops.fneuron(x, weight, low, inv_step)
    return FNeuronFunction.apply(x, weight, offsets, low, inv_step, few_sets)
