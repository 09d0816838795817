"""Native C++ kernels of the adaptive activations against the eager path and the formulas.

The first test to run compiles the kernels, which took 34-55 s on a
loaded 2-core machine. torch caches the build, so later runs take a few
seconds.
"""

from __future__ import annotations

import shutil
import warnings

import pytest
import torch

from reactivate import AHAF, LEAF, FNeuronActivation
from reactivate.activations import kernels, native

GRANULARITIES = ("layer", "channel", "neuron")
SHAPES = ((6, 5), (3, 4, 5, 2))


@pytest.fixture(scope="module", autouse=True)
def native_backend():
    """Build the kernels once and select the native backend for this module."""
    try:
        native.load()
    except native.NativeBuildError:
        if shutil.which("c++") is None or shutil.which("ninja") is None:
            pytest.skip("the native kernels need a C++ compiler and ninja on PATH")
        raise
    previous = kernels.get_backend()
    kernels.set_backend("native")
    yield
    kernels.set_backend(previous)


def make_module(family, granularity, shape, dtype=torch.float32, **kwargs):
    """Build a module with random parameters so that every gradient term matters."""
    size = None if granularity == "layer" else shape[1:]
    if family == "ahaf":
        module = AHAF("silu", granularity=granularity, shape=size, dtype=dtype, **kwargs)
    elif family == "leaf":
        module = LEAF("silu", granularity=granularity, shape=size, dtype=dtype, **kwargs)
    else:
        module = FNeuronActivation("tanh", granularity=granularity, shape=size, dtype=dtype, **kwargs)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.5 * torch.randn(p.shape, generator=generator, dtype=dtype))
    return module


def forward_backward(module, x, grad, backend):
    """Return the output, the input gradient and the parameter gradients on ``backend``."""
    kernels.set_backend(backend)
    try:
        x = x.detach().clone().requires_grad_()
        module.zero_grad(set_to_none=True)
        y = module(x)
        y.backward(grad)
        return [y.detach(), x.grad] + [p.grad for p in module.parameters()]
    finally:
        kernels.set_backend("native")


CASES = [(f, g, s) for f in ("ahaf", "leaf", "fneuron") for g in GRANULARITIES for s in SHAPES]


@pytest.mark.parametrize(("family", "granularity", "shape"), CASES)
def test_native_matches_eager(family, granularity, shape):
    module = make_module(family, granularity, shape)
    x = 3 * torch.randn(shape, generator=torch.Generator().manual_seed(2))
    grad = torch.randn(shape, generator=torch.Generator().manual_seed(3))
    native_results = forward_backward(module, x, grad, "native")
    eager_results = forward_backward(module, x, grad, "eager")
    names = ["output", "input grad"] + [name for name, _ in module.named_parameters()]
    for name, got, expected in zip(names, native_results, eager_results):
        assert got.shape == expected.shape, name
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5, msg=name)


@pytest.mark.parametrize(("family", "granularity", "shape"), CASES)
def test_native_matches_formula(family, granularity, shape):
    module = make_module(family, granularity, shape, dtype=torch.float64)
    x = 3 * torch.randn(shape, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    torch.testing.assert_close(module(x), module.reference_forward(x), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("family", "granularity"), [(f, g) for f in ("ahaf", "leaf", "fneuron") for g in GRANULARITIES])
def test_native_gradcheck_float64(family, granularity):
    shape = (3, 2, 3)
    extra = {"num_functions": 5} if family == "fneuron" else {}
    module = make_module(family, granularity, shape, dtype=torch.float64, **extra)
    # Inputs away from the F-neuron's centres (-4, -2, 0, 2, 4), where its
    # derivative jumps, and some beyond its interval.
    values = [-5.1, -3.7, -2.3, -1.1, -0.3, 0.4, 1.3, 2.6, 3.3, 5.2, -0.7, 1.7, -1.6, 0.9, 2.2, -2.8, 3.9, -0.1]
    x = torch.tensor(values, dtype=torch.float64).reshape(shape).requires_grad_()
    names = [name for name, _ in module.named_parameters()]
    params = [p.detach().clone().requires_grad_() for p in module.parameters()]

    def run(inp, *values):
        return torch.func.functional_call(module, dict(zip(names, values)), (inp,))

    assert torch.autograd.gradcheck(run, (x, *params))


@pytest.mark.parametrize("family", ["ahaf", "leaf", "fneuron"])
@pytest.mark.parametrize("granularity", GRANULARITIES)
def test_native_large_inputs_finite(family, granularity):
    shape = (4, 8)
    size = None if granularity == "layer" else shape[1:]
    if family == "fneuron":
        module = make_module(family, granularity, shape)
    else:
        module = (AHAF if family == "ahaf" else LEAF)("relu", gamma=1e9, granularity=granularity, shape=size)
    values = torch.tensor([-1e4, -3e3, -50.0, -1e-3, 0.0, 1e-3, 50.0, 1e4])
    x = values.repeat(4, 1).requires_grad_()
    y = module(x)
    y.sum().backward()
    assert torch.isfinite(y).all()
    assert torch.isfinite(x.grad).all()
    for name, p in module.named_parameters():
        assert torch.isfinite(p.grad).all(), name
    if family != "fneuron":
        # AHAF and LEAF started as ReLU with gamma = 1e9 are ReLU up to 2.8e-10.
        torch.testing.assert_close(y.detach(), torch.relu(x.detach()), rtol=1e-6, atol=1e-6)
    else:
        # Beyond the interval the F-neuron is constant with zero slope.
        assert (x.grad[:, [0, 1, 2, 6, 7]] == 0).all()


def test_native_fneuron_infinite_and_nan_inputs():
    module = FNeuronActivation("tanh")
    x = torch.tensor([[-float("inf"), float("inf"), float("nan"), 0.5]], requires_grad=True)
    y = module(x)
    y.sum().backward()
    weight = module.weight.detach()
    assert y[0, 0] == weight[0]
    assert y[0, 1] == weight[-1]
    assert torch.isnan(y[0, 2])
    assert (x.grad[0, :2] == 0).all()


@pytest.mark.parametrize("family", ["ahaf", "leaf"])
def test_native_float16_gamma_1e9_finite(family):
    module = (AHAF if family == "ahaf" else LEAF)("relu").half()
    x = torch.tensor([[-1e4, -2.0, -1e-3, 0.0, 1e-3, 2.0, 6e4]], dtype=torch.float16, requires_grad=True)
    y = module(x)
    y.sum().backward()
    assert y.dtype == torch.float16
    assert torch.isfinite(y).all()
    assert torch.isfinite(x.grad).all()
    torch.testing.assert_close(y.detach(), torch.relu(x.detach()))


def test_native_saves_only_input_and_parameters():
    x = torch.randn(64, 32, 8, 8, requires_grad=True)
    for module in (AHAF(), LEAF(), FNeuronActivation(), AHAF(granularity="channel", shape=(32, 8, 8))):
        saved = {}

        def pack(t):
            saved[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            module(x)
        parameter_bytes = sum(p.numel() * p.element_size() for p in module.parameters())
        assert x.untyped_storage().data_ptr() in saved, type(module).__name__
        assert sum(saved.values()) <= x.numel() * x.element_size() + parameter_bytes, type(module).__name__


def test_native_runs_native_op():
    x = torch.randn(4, 3, requires_grad=True)
    for module in (AHAF(), LEAF(), FNeuronActivation()):
        y = module(x)
        assert f"{type(module).__name__.replace('Activation', '')}Native" in y.grad_fn.name()


def test_native_double_backward_raises():
    x = torch.randn(4, 3, requires_grad=True)
    y = AHAF()(x).sum()
    with pytest.raises(RuntimeError, match="double backward"):
        torch.autograd.grad(y, x, create_graph=True)


def test_native_noncontiguous_input():
    module = make_module("leaf", "channel", (4, 6, 5))
    base = torch.randn(4, 5, 6)
    x = base.transpose(1, 2)
    grad = torch.randn(4, 6, 5)
    native_results = forward_backward(module, x, grad, "native")
    eager_results = forward_backward(module, x, grad, "eager")
    for got, expected in zip(native_results, eager_results):
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_auto_backend_uses_native():
    kernels.set_backend("auto")
    try:
        y = AHAF()(torch.randn(3, 2, requires_grad=True))
    finally:
        kernels.set_backend("native")
    assert "AHAFNative" in y.grad_fn.name()


@pytest.mark.filterwarnings("ignore:`torch.jit.trace")
def test_native_trace_uses_plain_ops():
    module = make_module("fneuron", "channel", (2, 3, 4))
    x = torch.randn(2, 3, 4)
    traced = torch.jit.trace(module, x)
    torch.testing.assert_close(traced(x), module(x))


def test_set_backend_rejects_unknown():
    with pytest.raises(ValueError, match="native"):
        kernels.set_backend("fast")


def test_auto_backend_falls_back_once(monkeypatch):
    # A remembered build failure simulates a machine without a compiler.
    # monkeypatch restores the loaded kernels and the backend afterwards.
    monkeypatch.setattr(native, "_ops", None)
    monkeypatch.setattr(native, "_error", OSError("c++: command not found"))
    monkeypatch.setattr(kernels, "_auto_native_ok", True)
    monkeypatch.setattr(kernels, "_backend", "auto")
    x = torch.randn(3, 2, requires_grad=True)
    with pytest.warns(RuntimeWarning, match="command not found"):
        first = AHAF()(x)
    with warnings.catch_warnings(record=True) as later:
        warnings.simplefilter("always")
        second = LEAF()(x)
    assert [w for w in later if issubclass(w.category, RuntimeWarning)] == []
    assert first.grad_fn.name() == "AHAFFunctionBackward"
    assert second.grad_fn.name() == "LEAFFunctionBackward"


def test_native_backend_raises_build_error(monkeypatch):
    monkeypatch.setattr(native, "_ops", None)
    monkeypatch.setattr(native, "_error", OSError("c++: command not found"))
    monkeypatch.setattr(kernels, "_backend", "eager")
    with pytest.raises(native.NativeBuildError, match="command not found"):
        kernels.set_backend("native")
    assert kernels.get_backend() == "eager"


SATURATION_CASES = [
    (family, granularity, dtype)
    for family in ("ahaf", "leaf")
    for granularity in GRANULARITIES
    for dtype in (torch.float32, torch.float64)
]


@pytest.mark.parametrize(("family", "granularity", "dtype"), SATURATION_CASES)
def test_native_saturated_blocks_match_exact_blocks(family, granularity, dtype):
    # Started as ReLU (gamma = 1e9), sigmoid(gamma x) is exactly 0 or 1 for
    # these inputs, so the kernels take their step-function shortcut for
    # each block of 512 elements. A 0 in the first block sends that block
    # through the exponential instead. The other elements of that block must
    # come out with the same bits. Everything must match eager.
    shape = (2, 3, 1024) if granularity == "channel" else (2, 1024)
    size = None if granularity == "layer" else shape[1:]
    cls = AHAF if family == "ahaf" else LEAF
    module = cls("relu", gamma=1e9, granularity=granularity, shape=size, dtype=dtype)
    generator = torch.Generator().manual_seed(5)
    magnitude = 0.01 + torch.randn(shape, generator=generator, dtype=dtype).abs()
    sign = torch.where(torch.rand(shape, generator=generator) < 0.5, -1.0, 1.0).to(dtype)
    x_fast = sign * magnitude
    x_exact = x_fast.clone()
    x_exact.view(-1)[0] = 0.0
    grad = torch.randn(shape, generator=generator, dtype=dtype)

    fast = forward_backward(module, x_fast, grad, "native")
    exact = forward_backward(module, x_exact, grad, "native")
    first_block = (0,) * (len(shape) - 1)
    for name, got, expected in zip(["output", "input grad"], fast[:2], exact[:2]):
        assert torch.equal(got[first_block][1:512], expected[first_block][1:512]), name
    names = ["output", "input grad"] + [name for name, _ in module.named_parameters()]
    eager = forward_backward(module, x_fast, grad, "eager")
    for name, got, expected in zip(names, fast, eager, strict=True):
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5, msg=name)


def test_native_saturation_nan_unsaturated():
    module = AHAF("relu", gamma=1e9)
    x = torch.full((2, 600), 0.5)
    x[0, 3] = float("nan")
    y = module(x)
    assert torch.isnan(y[0, 3])
    assert torch.equal(y[1], x[1])
    module.gamma.data.fill_(float("nan"))
    assert torch.isnan(module(torch.ones(4, 600))).all()


@pytest.mark.parametrize("cls", [AHAF, LEAF])
@pytest.mark.parametrize("granularity", GRANULARITIES)
def test_native_chained_backward_matches_eager(cls, granularity):
    # Between two ops the incoming gradient is a temporary, which the
    # kernels overwrite with the input gradient.
    module = make_module("ahaf" if cls is AHAF else "leaf", granularity, (8, 3, 100))
    x = torch.randn(8, 3, 100)
    results = {}
    for backend in ("native", "eager"):
        kernels.set_backend(backend)
        try:
            inp = x.clone().requires_grad_()
            module.zero_grad(set_to_none=True)
            (module(inp * 2.0) * 3.0).square().sum().backward()
            results[backend] = [inp.grad] + [p.grad for p in module.parameters()]
        finally:
            kernels.set_backend("native")
    for got, expected in zip(results["native"], results["eager"], strict=True):
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("cls", [AHAF, LEAF])
def test_native_backward_keeps_held_gradient(cls):
    module = cls("silu")
    x = torch.randn(8, 300, requires_grad=True)
    y = module(x)
    y.retain_grad()
    held = []
    y.register_hook(held.append)
    (y * 3.0).sum().backward()
    assert torch.equal(y.grad, torch.full_like(y, 3.0))
    assert torch.equal(held[0], torch.full_like(y, 3.0))
    assert x.grad.data_ptr() != y.grad.data_ptr()


@pytest.mark.parametrize("family", ["ahaf", "leaf", "fneuron"])
@pytest.mark.parametrize("granularity", GRANULARITIES)
def test_native_channels_last_input(family, granularity):
    # Layer and channel sets walk a channels-last input as it is and give a
    # channels-last output; neuron sets copy it first. All match eager.
    shape = (3, 5, 4, 6)
    module = make_module(family, granularity, shape)
    x = torch.randn(shape).contiguous(memory_format=torch.channels_last)
    grad = torch.randn(shape).contiguous(memory_format=torch.channels_last)
    native_results = forward_backward(module, x, grad, "native")
    eager_results = forward_backward(module, x, grad, "eager")
    names = ["output", "input grad"] + [name for name, _ in module.named_parameters()]
    for name, got, expected in zip(names, native_results, eager_results, strict=True):
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5, msg=name)
    if granularity != "neuron":
        assert native_results[0].is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("family", ["ahaf", "leaf", "fneuron"])
def test_native_layer_transposed_input(family):
    module = make_module(family, "layer", (6, 7))
    x = torch.randn(7, 6).t()
    grad = torch.randn(7, 6).t()
    native_results = forward_backward(module, x, grad, "native")
    eager_results = forward_backward(module, x, grad, "eager")
    for got, expected in zip(native_results, eager_results, strict=True):
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    assert native_results[0].stride() == x.stride()


@pytest.mark.filterwarnings("ignore:There is a performance drop")
@pytest.mark.parametrize("family", ["ahaf", "leaf", "fneuron"])
def test_native_backend_under_torch_func(family):
    # torch.func wraps its tensors, so the modules switch to the eager
    # functions there; the results must match the native autograd ones.
    module = make_module(family, "channel", (4, 5, 7))
    x = 2 * torch.randn(4, 5, 7, generator=torch.Generator().manual_seed(6))
    grad = torch.func.grad(lambda inp: module(inp).square().sum())(x)
    leaf = x.clone().requires_grad_()
    module(leaf).square().sum().backward()
    torch.testing.assert_close(grad, leaf.grad, rtol=1e-5, atol=1e-5)
    batched = torch.func.vmap(module)(x.unsqueeze(1).expand(4, 2, 5, 7))
    torch.testing.assert_close(batched, module(x).unsqueeze(1).expand(4, 2, 5, 7), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("family", ["ahaf", "leaf", "fneuron"])
def test_native_empty_batch_per_neuron(family):
    module = make_module(family, "neuron", (0, 3, 4, 4))
    x = torch.randn(0, 3, 4, 4)
    grad = torch.randn(0, 3, 4, 4)
    native_results = forward_backward(module, x, grad, "native")
    eager_results = forward_backward(module, x, grad, "eager")
    assert native_results[0].shape == (0, 3, 4, 4)
    for got, expected in zip(native_results, eager_results, strict=True):
        torch.testing.assert_close(got, expected)


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_native_forward_mode_ad_raises():
    import torch.autograd.forward_ad as fwAD

    for module in (AHAF(), LEAF(), FNeuronActivation()):
        with fwAD.dual_level():
            dual = fwAD.make_dual(torch.randn(5), torch.ones(5))
            with pytest.raises(RuntimeError, match="forward-mode AD"):
                module(dual)


@pytest.mark.parametrize(("family", "shape"), [("ahaf", (200_000, 4)), ("leaf", (40_000, 8)), ("fneuron", (40_000, 8))])
def test_native_per_element_sums_keep_precision(family, shape):
    # With 2-d input and one set per channel, each parameter gradient sums
    # one value per row. Against a float64 run, the float32 kernels must
    # stay close to float32's own rounding, not drift with the batch size.
    module = make_module(family, "channel", shape)
    generator = torch.Generator().manual_seed(7)
    x = 2 * torch.randn(shape, generator=generator)
    grad = torch.randn(shape, generator=generator)
    got = forward_backward(module, x, grad, "native")[2:]
    reference = make_module(family, "channel", shape, dtype=torch.float64)
    reference.load_state_dict(module.state_dict())
    expected = forward_backward(reference, x.double(), grad.double(), "eager")[2:]
    for name, g, e in zip([n for n, _ in module.named_parameters()], got, expected, strict=True):
        error = ((g.double() - e).abs().max() / e.abs().max()).item()
        assert error < 2e-6, (name, error)
