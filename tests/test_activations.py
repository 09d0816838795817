"""Adaptive activation families: reproduction, error bounds, formulas, gradients."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from reactivate import AHAF, LEAF, FNeuronActivation
from reactivate.activations import FAMILIES, activation_from_config

FAMILY_CLASSES = {"ahaf": AHAF, "leaf": LEAF, "fneuron": FNeuronActivation}
GRID = torch.linspace(-6.0, 6.0, 20_001, dtype=torch.float64)


def grid_error(module, z=GRID):
    """Max abs difference between a float64 copy of ``module`` and its original on ``z``."""
    module = module.double()
    with torch.no_grad():
        return float((module(z) - module.original_forward(z)).abs().max())


# -- reproduction of classic functions ---------------------------------------

# (family, init, keyword arguments, max abs error on [-6, 6] in float64)
REPRODUCTION_CASES = [
    ("ahaf", "silu", {}, 1e-15),
    ("ahaf", "swish", {"slope": 1.5}, 1e-15),
    ("ahaf", "relu", {}, 0.2785e-9),
    ("ahaf", "relu", {"gamma": 1e4}, 2.79e-5),
    ("ahaf", "gelu", {}, 0.0204),
    ("ahaf", "gelu", {"approximate": "tanh"}, 0.0207),
    ("leaf", "silu", {}, 1e-15),
    ("leaf", "swish", {"slope": 0.5}, 1e-15),
    ("leaf", "sigmoid", {}, 1e-15),
    ("leaf", "tanh", {}, 1e-15),
    ("leaf", "relu", {}, 0.2785e-9),
    ("leaf", "gelu", {}, 0.0204),
    ("fneuron", "hardtanh", {"num_functions": 9}, 1e-15),
    ("fneuron", "hardtanh", {"num_functions": 9, "min_val": -2.0, "max_val": 3.0}, 1e-15),
    ("fneuron", "relu6", {"interval": (-1.0, 7.0), "num_functions": 9}, 1e-15),
    ("fneuron", "hardsigmoid", {"num_functions": 9}, 1e-15),
    ("fneuron", "hardsigmoid", {"interval": (-3.0, 3.0), "num_functions": 3}, 1e-15),
    ("fneuron", "tanh", {}, 0.0192),
    ("fneuron", "sigmoid", {}, 0.0180),
    ("fneuron", "leaky_relu", {"interval": (-6.0, 6.0), "num_functions": 13, "negative_slope": 0.1}, 1e-15),
    ("fneuron", "relu", {"interval": (-6.0, 6.0), "num_functions": 7}, 1e-15),
    ("fneuron", "silu", {"interval": (-6.0, 6.0), "num_functions": 49}, 0.01),
    ("fneuron", "gelu", {"interval": (-6.0, 6.0), "num_functions": 49, "approximate": "tanh"}, 0.01),
]


@pytest.mark.parametrize(("family", "init", "kwargs", "tolerance"), REPRODUCTION_CASES)
def test_family_reproduces_classic(family, init, kwargs, tolerance):
    module = FAMILY_CLASSES[family](init, dtype=torch.float64, **kwargs)
    assert module.init == init
    assert grid_error(module) <= tolerance


@pytest.mark.parametrize(("family", "init", "kwargs", "tolerance"), REPRODUCTION_CASES)
def test_error_bound_covers_measured(family, init, kwargs, tolerance):
    module = FAMILY_CLASSES[family](init, dtype=torch.float64, **kwargs)
    bound = module.error_bound((-6.0, 6.0))
    assert bound.original == init
    assert bound.interval == (-6.0, 6.0)
    measured = grid_error(module)
    # A computed bound is the max over a finer grid that contains this one.
    assert measured <= bound.max_abs_error * (1 + 1e-9) + 1e-15
    assert bound.max_abs_error <= bound.max_abs_error_real_line
    if bound.exact:
        assert bound.method == "exact"
        assert measured <= 1e-12


def test_ahaf_default_equals_silu():
    x = torch.randn(4096, dtype=torch.float64) * 5
    module = AHAF().double()
    assert module.beta.item() == 1.0
    assert module.gamma.item() == 1.0
    torch.testing.assert_close(module(x), F.silu(x), rtol=1e-15, atol=1e-15)


@pytest.mark.parametrize(("init", "original"), [("silu", F.silu), ("sigmoid", torch.sigmoid), ("tanh", torch.tanh)])
def test_leaf_matches_to_rounding(init, original):
    x = torch.randn(4096) * 5
    torch.testing.assert_close(LEAF(init)(x), original(x), rtol=0, atol=1e-6)
    x64 = x.double()
    torch.testing.assert_close(LEAF(init).double()(x64), original(x64), rtol=1e-15, atol=1e-15)


def test_fneuron_tanh_paper_squared_error():
    module = FNeuronActivation("tanh", interval=(-4.0, 4.0), num_functions=18)
    z = torch.linspace(-4.0, 4.0, 100_001, dtype=torch.float64)
    with torch.no_grad():
        squared = (module.double()(z) - torch.tanh(z)).square().max()
    assert float(squared) <= 4e-4
    assert abs(float(squared) - 3.66e-4) < 0.01e-4


def test_fneuron_hardtanh_exact_on_unit_grid():
    module = FNeuronActivation("hardtanh", interval=(-4.0, 4.0), num_functions=9)
    z = torch.linspace(-50.0, 50.0, 100_001, dtype=torch.float64)
    with torch.no_grad():
        assert float((module.double()(z) - F.hardtanh(z)).abs().max()) <= 1e-15
        x = torch.randn(10_000) * 3
        assert float((module.float()(x) - F.hardtanh(x)).abs().max()) <= 1e-6
    bound = module.error_bound()
    assert bound.exact
    assert bound.method == "exact"
    assert bound.max_abs_error_real_line == 0.0


def test_fneuron_hardtanh_off_grid_not_exact():
    bound = FNeuronActivation("hardtanh", num_functions=18).error_bound()
    assert not bound.exact
    assert bound.method == "computed"
    assert bound.max_abs_error > 0.01


@pytest.mark.parametrize(
    "family,init", [("ahaf", "tanh"), ("ahaf", "sigmoid"), ("ahaf", "leaky_relu"), ("leaf", "hardtanh"), ("leaf", "relu6")]
)
def test_unsupported_pair_lists_supported(family, init):
    cls = FAMILY_CLASSES[family]
    with pytest.raises(ValueError, match=f"init='{init}'") as info:
        cls(init)
    for name in cls.supported_inits:
        assert name in str(info.value)


# -- error bounds ---------------------------------------------------------------


def test_ahaf_relu_bound_analytic():
    bound = AHAF("relu").error_bound()
    assert bound.method == "analytic"
    assert not bound.exact
    assert bound.max_abs_error == pytest.approx(0.2785e-9, rel=1e-3)
    assert bound.max_abs_error_real_line == pytest.approx(0.2785e-9, rel=1e-3)
    assert AHAF("relu", gamma=1e4).error_bound().max_abs_error == pytest.approx(2.785e-5, rel=1e-3)


def test_relu_bound_away_from_zero():
    module = AHAF("relu", gamma=10.0)
    bound = module.error_bound((1.0, 4.0))
    expected = 1.0 / (1.0 + math.exp(10.0))
    assert bound.max_abs_error == pytest.approx(expected, rel=1e-12)
    z = torch.linspace(1.0, 4.0, 10_001, dtype=torch.float64)
    assert grid_error(module, z) == pytest.approx(expected, rel=1e-9)


def test_leaf_relu_bound_matches_ahaf():
    assert LEAF("relu", gamma=1e3).error_bound() == AHAF("relu", gamma=1e3).error_bound()


def test_gelu_bound_computed():
    bound = AHAF("gelu").error_bound()
    assert bound.method == "computed"
    assert bound.max_abs_error == pytest.approx(0.0203, abs=5e-4)
    assert bound.max_abs_error_real_line >= bound.max_abs_error


def test_fneuron_sigmoid_bound_outside_interval():
    bound = FNeuronActivation("sigmoid").error_bound()
    assert bound.max_abs_error < 0.003
    assert bound.max_abs_error_real_line == pytest.approx(0.018, abs=5e-4)


def test_fneuron_unbounded_real_line_error():
    bound = FNeuronActivation("relu", num_functions=9).error_bound()
    assert bound.max_abs_error <= 1e-12
    assert math.isinf(bound.max_abs_error_real_line)
    assert not bound.exact


@pytest.mark.parametrize(
    "init,kwargs",
    [
        ("hardtanh", {"num_functions": 9}),
        ("relu6", {"interval": (-1.0, 7.0), "num_functions": 9}),
        ("relu6", {"interval": (-2.0, 8.0), "num_functions": 11}),
        ("hardsigmoid", {"num_functions": 9}),
    ],
)
def test_fneuron_exact_grids(init, kwargs):
    module = FNeuronActivation(init, dtype=torch.float64, **kwargs)
    assert module.error_bound().exact
    a, b = module.interval
    z = torch.linspace(a - 100, b + 100, 50_001, dtype=torch.float64)
    assert grid_error(module, z) <= 1e-15


# -- values and gradients against the textbook formulas ------------------------


def perturbed(module, scale=0.2, seed=0):
    """Move every parameter away from its start so that all terms are exercised."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn(p.shape, generator=generator, dtype=p.dtype))
    return module


def test_ahaf_formula_and_gradients():
    module = perturbed(AHAF("silu", granularity="channel", shape=(3,)).double())
    x = torch.randn(5, 3, 4, dtype=torch.float64, requires_grad=True)
    grad = torch.randn(5, 3, 4, dtype=torch.float64)
    y = module(x)
    gx, gbeta, ggamma = torch.autograd.grad(y, (x, module.beta, module.gamma), grad)

    b = module.beta.detach().view(1, 3, 1)
    c = module.gamma.detach().view(1, 3, 1)
    z = x.detach()
    s = 1 / (1 + torch.exp(-c * z))
    torch.testing.assert_close(y, b * z * s)
    torch.testing.assert_close(gx, grad * b * (s + c * z * s * (1 - s)))
    torch.testing.assert_close(gbeta, (grad * z * s).sum(dim=(0, 2)))
    torch.testing.assert_close(ggamma, (grad * b * z * z * s * (1 - s)).sum(dim=(0, 2)))


def test_leaf_formula_and_gradients():
    module = perturbed(LEAF("tanh", granularity="neuron", shape=(3, 2)).double())
    x = torch.randn(5, 3, 2, dtype=torch.float64, requires_grad=True)
    grad = torch.randn(5, 3, 2, dtype=torch.float64)
    y = module(x)
    params = (module.p1, module.p2, module.p3, module.p4)
    gx, g1, g2, g3, g4 = torch.autograd.grad(y, (x, *params), grad)

    p1, p2, p3, p4 = (p.detach() for p in params)
    z = x.detach()
    s = 1 / (1 + torch.exp(-p3 * z))
    torch.testing.assert_close(y, (p1 * z + p2) * s + p4)
    torch.testing.assert_close(gx, grad * (p1 * s + (p1 * z + p2) * p3 * s * (1 - s)))
    torch.testing.assert_close(g1, (grad * z * s).sum(0))
    torch.testing.assert_close(g2, (grad * s).sum(0))
    torch.testing.assert_close(g3, (grad * (p1 * z + p2) * z * s * (1 - s)).sum(0))
    torch.testing.assert_close(g4, grad.sum(0))


def textbook_memberships(z, low, high, m):
    """Left ramp, m - 2 triangles and right ramp, each written out separately."""
    h = (high - low) / (m - 1)
    centres = [low + j * h for j in range(m)]
    functions = [torch.clamp((centres[1] - z) / h, 0, 1)]
    for c in centres[1:-1]:
        functions.append(torch.clamp(1 - (z - c).abs() / h, min=0))
    functions.append(torch.clamp((z - centres[-2]) / h, 0, 1))
    return functions


@pytest.mark.parametrize("granularity", ["layer", "channel", "neuron"])
def test_fneuron_sum_of_memberships(granularity):
    m, low, high = 7, -2.0, 3.0
    module = FNeuronActivation("sigmoid", interval=(low, high), num_functions=m, granularity=granularity, shape=(3, 4))
    module = perturbed(module.double())
    x = (torch.rand(6, 3, 4, dtype=torch.float64) * 8 - 3).requires_grad_()
    grad = torch.randn(6, 3, 4, dtype=torch.float64)
    y = module(x)
    gx, gw = torch.autograd.grad(y, (x, module.weight), grad)

    w = module.weight.detach()
    if granularity == "channel":
        w = w.view(1, 3, 1, m)
    mu = textbook_memberships(x.detach(), low, high, m)
    expected = sum(w[..., j] * mu[j] for j in range(m))
    torch.testing.assert_close(y, expected)
    reduce_dims = {"layer": (0, 1, 2), "channel": (0, 2), "neuron": (0,)}[granularity]
    expected_gw = torch.stack([(grad * mu[j]).sum(reduce_dims) for j in range(m)], dim=-1)
    torch.testing.assert_close(gw, expected_gw)
    # Inside the interval the slope is (p_{k+1} - p_k) / h, outside it is 0.
    h = (high - low) / (m - 1)
    k = ((x.detach() - low) / h).floor().clamp(0, m - 2).long()
    wide = w.expand(6, 3, 4, m)
    slope = (wide.gather(-1, (k + 1).unsqueeze(-1)) - wide.gather(-1, k.unsqueeze(-1))).squeeze(-1) / h
    inside = (x.detach() >= low) & (x.detach() <= high)
    torch.testing.assert_close(gx, torch.where(inside, grad * slope, torch.zeros_like(grad)))


def test_reference_forward_matches_forward():
    x = torch.randn(4, 5, 6, dtype=torch.float64) * 3
    for module in (AHAF("gelu"), LEAF("tanh"), FNeuronActivation("tanh")):
        module = perturbed(module.double())
        torch.testing.assert_close(module(x), module.reference_forward(x))


def gradcheck_modules():
    for granularity in ("layer", "channel", "neuron"):
        kw = {"granularity": granularity, "shape": (3, 2)}
        yield f"ahaf-{granularity}", AHAF("silu", **kw)
        yield f"leaf-{granularity}", LEAF("tanh", **kw)
        yield f"fneuron-{granularity}", FNeuronActivation("tanh", num_functions=6, **kw)


@pytest.mark.parametrize(("name", "module"), list(gradcheck_modules()), ids=lambda v: v if isinstance(v, str) else "")
def test_gradcheck_float64(name, module):
    module = perturbed(module.double(), seed=1)
    # Fixed inputs that keep away from the F-neuron's centres (kinks).
    x = torch.tensor([-5.1, -2.3, -0.7, 0.3, 1.9, 4.6], dtype=torch.float64).view(1, 3, 2)
    x = torch.cat([x, x.flip(-1) * 0.9]).requires_grad_()
    params = tuple(module.parameters())

    def function(inp, *values):
        return torch.func.functional_call(module, dict(zip((n for n, _ in module.named_parameters()), values)), (inp,))

    assert torch.autograd.gradcheck(function, (x, *params), eps=1e-6, atol=1e-7)


# -- granularity and shapes ----------------------------------------------------


@pytest.mark.parametrize("family", ["ahaf", "leaf", "fneuron"])
def test_layer_channel_any_input_size(family):
    cls = FAMILY_CLASSES[family]
    layer = cls(granularity="layer")
    channel = cls(granularity="channel", shape=(4,))
    for shape in [(2, 4), (2, 4, 7), (2, 4, 5, 5), (1, 4, 9, 3, 2)]:
        x = torch.randn(shape)
        assert layer(x).shape == x.shape
        assert channel(x).shape == x.shape
        torch.testing.assert_close(channel(x), layer(x))


@pytest.mark.parametrize("family", ["ahaf", "leaf", "fneuron"])
def test_neuron_rejects_other_shape(family):
    module = FAMILY_CLASSES[family](granularity="neuron", shape=(4, 5))
    assert module(torch.randn(3, 4, 5)).shape == (3, 4, 5)
    with pytest.raises(ValueError, match=r"\(2, 4, 6\)"):
        module(torch.randn(2, 4, 6))


@pytest.mark.parametrize("family", ["ahaf", "leaf", "fneuron"])
def test_channel_rejects_other_channels(family):
    module = FAMILY_CLASSES[family](granularity="channel", shape=(4, 5))
    with pytest.raises(ValueError, match="dimension 1 must have size 4"):
        module(torch.randn(2, 3, 5))


def test_parameter_shapes():
    assert AHAF().beta.shape == ()
    assert AHAF(granularity="channel", shape=(8, 4, 4)).gamma.shape == (8,)
    assert LEAF(granularity="neuron", shape=(8, 4)).p3.shape == (8, 4)
    assert FNeuronActivation().weight.shape == (18,)
    assert FNeuronActivation(granularity="channel", shape=(8,)).weight.shape == (8, 18)
    assert FNeuronActivation(granularity="neuron", shape=(8, 2), num_functions=5).weight.shape == (8, 2, 5)


# -- dtypes, extremes, autocast ------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("family", ["ahaf", "leaf", "fneuron"])
def test_input_dtypes(family, dtype):
    module = perturbed(FAMILY_CLASSES[family](granularity="channel", shape=(3,)))
    x = (torch.randn(4, 3, 5) * 3).to(dtype).requires_grad_()
    y = module(x)
    assert y.dtype == dtype
    y.float().sum().backward()
    assert x.grad.dtype == dtype
    for p in module.parameters():
        assert p.dtype == torch.float32
        assert p.grad.dtype == torch.float32
        assert torch.isfinite(p.grad).all()
    expected = module(x.detach().float())
    tolerance = {torch.float16: 2e-3, torch.bfloat16: 2e-2}.get(dtype, 1e-6)
    torch.testing.assert_close(y.float(), expected, rtol=tolerance, atol=tolerance)


EXTREME_HALF = torch.tensor([0.0, -0.0, 1e-7, -1e-7, 6e-5, -6e-5, 1.0, -1.0, 65504.0, -65504.0])


@pytest.mark.parametrize("family", ["ahaf", "leaf"])
def test_relu_gamma_float16_finite(family):
    module = FAMILY_CLASSES[family]("relu")
    x = EXTREME_HALF.half().requires_grad_()
    y = module(x)
    y.float().sum().backward()
    assert torch.isfinite(y).all()
    assert torch.isfinite(x.grad).all()
    torch.testing.assert_close(y, F.relu(x.detach()), rtol=1e-3, atol=1e-7)


@pytest.mark.parametrize("family", ["ahaf", "leaf"])
def test_relu_gamma_after_half(family):
    module = FAMILY_CLASSES[family]("relu").half()
    assert all(p.dtype == torch.float16 for p in module.parameters())
    x = EXTREME_HALF.half().requires_grad_()
    y = module(x)
    y.float().sum().backward()
    assert y.dtype == torch.float16
    assert torch.isfinite(y).all()
    assert torch.isfinite(x.grad).all()
    for p in module.parameters():
        assert torch.isfinite(p.grad).all()
    assert y[0].item() == 0.0
    torch.testing.assert_close(y, F.relu(x.detach()), rtol=1e-3, atol=1e-7)


@pytest.mark.parametrize("granularity", ["layer", "channel"])
def test_fneuron_far_inputs_edge_values(granularity):
    module = perturbed(FNeuronActivation("tanh", granularity=granularity, shape=(2,)))
    x = torch.tensor([[1e4, -1e4], [-1e4, 1e4], [math.inf, -math.inf]]).requires_grad_()
    y = module(x)
    y.sum().backward()
    w = module.weight.detach().expand(2, 18)
    expected = torch.stack([torch.stack([w[0, -1], w[1, 0]]), torch.stack([w[0, 0], w[1, -1]]), torch.stack([w[0, -1], w[1, 0]])])
    torch.testing.assert_close(y.detach(), expected, rtol=0, atol=0)
    assert torch.equal(x.grad, torch.zeros_like(x))
    assert torch.isfinite(module.weight.grad).all()


def test_fneuron_nan_input_propagates():
    module = FNeuronActivation()
    y = module(torch.tensor([0.5, math.nan, -0.5]))
    assert torch.isnan(y[1])
    assert torch.isfinite(y[[0, 2]]).all()


def test_autocast_cpu_bfloat16():
    model = torch.nn.Sequential(
        torch.nn.Linear(8, 6), AHAF("relu", gamma=1e4), torch.nn.Linear(6, 6), LEAF("tanh"), torch.nn.Linear(6, 6), FNeuronActivation()
    )
    x = torch.randn(5, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = model(x)
    assert y.dtype == torch.bfloat16
    y.float().sum().backward()
    for p in model.parameters():
        assert p.dtype == torch.float32
        assert torch.isfinite(p.grad).all()
    torch.testing.assert_close(y.float(), model(x), rtol=5e-2, atol=5e-2)


# -- memory ----------------------------------------------------------------------


def saved_tensors(module, x):
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        module(x)
    return saved


@pytest.mark.parametrize("family", ["ahaf", "leaf", "fneuron"])
@pytest.mark.parametrize("granularity", ["layer", "channel", "neuron"])
def test_backward_saves_only_input(family, granularity):
    x = torch.randn(4, 3, 8, 8, requires_grad=True)
    module = FAMILY_CLASSES[family](granularity=granularity, shape=(3, 8, 8))
    saved = [t for t in saved_tensors(module, x) if not any(t is p for p in module.parameters())]
    input_sized = [t for t in saved if t.numel() >= x.numel()]
    assert len(input_sized) == 1
    assert input_sized[0].data_ptr() == x.data_ptr()
    # Besides the input: parameter views, and the F-neuron's per-neuron
    # long offsets (one per non-batch element).
    parameter_bytes = sum(p.numel() * p.element_size() for p in module.parameters())
    other_bytes = sum(t.numel() * t.element_size() for t in saved if t.numel() < x.numel())
    assert other_bytes <= parameter_bytes + 8 * x[0].numel()


def test_fneuron_memory_independent_of_m():
    x = torch.randn(16, 64, requires_grad=True)
    small = saved_tensors(FNeuronActivation(num_functions=4), x)
    large = saved_tensors(FNeuronActivation(num_functions=400), x)
    size = lambda ts: sum(t.numel() for t in ts)  # noqa: E731
    assert size(large) - size(small) == 396


# -- description -------------------------------------------------------------------


@pytest.mark.parametrize(
    "module",
    [
        AHAF("relu", gamma=1e4, granularity="channel", shape=(3,)),
        LEAF("gelu", approximate="tanh"),
        FNeuronActivation("hardtanh", num_functions=9, min_val=-2.0, max_val=2.0, granularity="neuron", shape=(2, 2)),
    ],
)
def test_config_round_trip(module):
    import json

    config = json.loads(json.dumps(module.config()))
    rebuilt = activation_from_config(config)
    assert type(rebuilt) is type(module)
    assert rebuilt.config() == module.config()
    x = torch.randn(2, 3, 2) if module.granularity != "neuron" else torch.randn(2, 2, 2)
    if module.granularity == "channel":
        x = torch.randn(2, 3, 5)
    torch.testing.assert_close(rebuilt(x), module(x))


def test_extra_repr_names_original():
    assert "init='relu'" in repr(AHAF("relu"))
    assert "gamma=1000000000.0" in repr(AHAF("relu"))
    assert "init='hardtanh'" in repr(FNeuronActivation("hardtanh", num_functions=9))
    assert "num_functions=9" in repr(FNeuronActivation("hardtanh", num_functions=9))
    assert set(FAMILIES) == {"ahaf", "leaf", "fneuron"}


# -- invalid arguments, one test per case ----------------------------------------------


def test_error_empty_interval():
    with pytest.raises(ValueError, match=r"interval=\(1.0, 1.0\) is empty or reversed"):
        FNeuronActivation(interval=(1.0, 1.0))


def test_error_reversed_interval():
    with pytest.raises(ValueError, match=r"interval=\(4.0, -4.0\) is empty or reversed"):
        FNeuronActivation(interval=(4.0, -4.0))


def test_error_interval_not_pair():
    with pytest.raises(ValueError, match=r"interval=\(1.0, 2.0, 3.0\) is invalid"):
        FNeuronActivation(interval=(1.0, 2.0, 3.0))


def test_error_interval_not_finite():
    with pytest.raises(ValueError, match="interval high=inf is invalid"):
        FNeuronActivation(interval=(-4.0, math.inf))


def test_error_too_few_functions():
    with pytest.raises(ValueError, match="num_functions=1 is invalid"):
        FNeuronActivation(num_functions=1)


def test_error_fractional_functions():
    with pytest.raises(ValueError, match="num_functions=4.5 is invalid"):
        FNeuronActivation(num_functions=4.5)


def test_error_gamma_not_finite():
    with pytest.raises(ValueError, match="gamma=nan is invalid"):
        AHAF("relu", gamma=math.nan)


def test_error_gamma_not_positive():
    with pytest.raises(ValueError, match="gamma=-5.0 is invalid"):
        LEAF("relu", gamma=-5.0)


def test_error_slope_not_finite():
    with pytest.raises(ValueError, match="slope=inf is invalid"):
        LEAF("swish", slope=math.inf)


def test_error_gamma_for_other_init():
    with pytest.raises(ValueError, match="gamma=5.0 applies only to init='relu'"):
        AHAF("silu", gamma=5.0)


def test_error_unknown_init_name():
    with pytest.raises(ValueError, match="init='relu7'"):
        FNeuronActivation("relu7")


def test_error_unknown_keyword():
    with pytest.raises(ValueError, match=r"unexpected keyword arguments \['max_val'\] for init='tanh'"):
        FNeuronActivation("tanh", max_val=2.0)


def test_error_gelu_approximate():
    with pytest.raises(ValueError, match="approximate='fast' is invalid"):
        AHAF("gelu", approximate="fast")


def test_error_hardtanh_limits():
    with pytest.raises(ValueError, match="min_val=2.0 must be less than max_val=1.0"):
        FNeuronActivation("hardtanh", min_val=2.0, max_val=1.0)


def test_error_wrong_granularity():
    with pytest.raises(ValueError, match="granularity='pixel' is invalid"):
        AHAF(granularity="pixel")


def test_error_shape_missing():
    with pytest.raises(ValueError, match="granularity='channel' needs shape="):
        LEAF(granularity="channel")


def test_error_shape_invalid():
    with pytest.raises(ValueError, match=r"shape=\(4, 0\) is invalid"):
        AHAF(granularity="neuron", shape=(4, 0))


def test_error_parameter_dtype():
    with pytest.raises(ValueError, match="dtype=torch.int64 is invalid"):
        AHAF(dtype=torch.int64)


def test_error_bound_reversed_interval():
    with pytest.raises(ValueError, match=r"interval=\(2.0, -2.0\) is empty or reversed"):
        AHAF("relu").error_bound((2.0, -2.0))


def test_error_integer_input():
    with pytest.raises(ValueError, match="expects a floating-point tensor, got torch.int64"):
        LEAF()(torch.arange(4))


def test_error_unknown_family_config():
    with pytest.raises(ValueError, match="unknown activation family 'prelu'"):
        activation_from_config({"family": "prelu", "init": "relu"})


@pytest.mark.parametrize("granularity", ["layer", "channel", "neuron"])
def test_fneuron_hinge_kernels_match(granularity):
    from reactivate.activations import kernels

    module = perturbed(FNeuronActivation("tanh", num_functions=7, granularity=granularity, shape=(3, 4)).double())
    x = (torch.rand(5, 3, 4, dtype=torch.float64) * 12 - 6).requires_grad_()
    grad = torch.randn(5, 3, 4, dtype=torch.float64)
    y = module(x)
    expected_gx, expected_gw = torch.autograd.grad(y, (x, module.weight), grad)

    weight = module._broadcast(module.weight.detach(), x, suffix=1)
    low, inv_step = module.interval[0], 1.0 / module.step
    torch.testing.assert_close(kernels.fneuron_forward_hinge(x.detach(), weight, low, inv_step), y.detach())
    gx, gw = kernels.fneuron_backward_hinge(grad, x.detach(), weight, low, inv_step)
    torch.testing.assert_close(gx, expected_gx)
    torch.testing.assert_close(gw.reshape(module.weight.shape), expected_gw)


@pytest.mark.parametrize("family", ["ahaf", "leaf", "fneuron"])
def test_zero_dim_input_gradients(family):
    module = perturbed(FAMILY_CLASSES[family]().double())
    x = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    params = list(module.parameters())
    grads = torch.autograd.grad(module(x), [x, *params])
    expected = torch.autograd.grad(module.reference_forward(x), [x, *params])
    for grad, reference in zip(grads, expected):
        torch.testing.assert_close(grad, reference)


@pytest.mark.filterwarnings("ignore:There is a performance drop")
@pytest.mark.parametrize("cls", [AHAF, LEAF, FNeuronActivation])
def test_torch_func_grad_and_vmap(cls):
    torch.manual_seed(0)
    module = cls(granularity="channel", shape=(5,))
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.3 * torch.randn_like(p))
    x = 2 * torch.randn(4, 5, 7)
    grad = torch.func.grad(lambda inp: module(inp).square().sum())(x)
    leaf = x.clone().requires_grad_()
    module(leaf).square().sum().backward()
    torch.testing.assert_close(grad, leaf.grad)
    params = dict(module.named_parameters())
    param_grads = torch.func.grad(lambda p: torch.func.functional_call(module, p, (x,)).sum())(params)
    for name, p in module.named_parameters():
        expected = torch.autograd.grad(module(x).sum(), p)[0]
        torch.testing.assert_close(param_grads[name], expected, msg=name)
    batched = torch.func.vmap(module)(x.unsqueeze(1).expand(4, 2, 5, 7))
    torch.testing.assert_close(batched, module(x).unsqueeze(1).expand(4, 2, 5, 7))


@pytest.mark.parametrize("cls", [AHAF, LEAF, FNeuronActivation])
def test_zero_dim_input_keeps_parameters(cls):
    module = cls()
    before = [p.detach().clone() for p in module.parameters()]
    x = torch.tensor(0.7, requires_grad=True)
    y = module(x)
    y.backward()
    for p, saved in zip(module.parameters(), before, strict=True):
        assert torch.equal(p.detach(), saved)
    single = torch.tensor([0.7], requires_grad=True)
    module(single).sum().backward()
    torch.testing.assert_close(x.grad, single.grad[0])
    torch.testing.assert_close(y.detach(), module(torch.tensor([0.7]))[0].detach())
