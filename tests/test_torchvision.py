"""Exact replacement on torchvision architectures built with random weights."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

torchvision = pytest.importorskip("torchvision")

from reactivate import (  # noqa: E402
    AdaptiveActivation,
    compare_models,
    freeze_except_activations,
    load_adapter,
    load_pretrained,
    replace_activations,
    restore_activations,
    save_adapter,
)

# Torch functions that compute a classic activation. nn.ReLU calls F.relu,
# which calls torch.relu, so counting the outermost call is enough.
CLASSIC = {
    F.relu, torch.relu, torch.relu_, F.relu_, F.relu6, F.silu, F.gelu, F.hardtanh, F.hardsigmoid, F.hardswish,
    torch.tanh, torch.sigmoid, F.tanh, F.sigmoid, F.leaky_relu, F.elu, F.mish,
    torch.Tensor.relu, torch.Tensor.relu_, torch.Tensor.sigmoid, torch.Tensor.tanh,
}


class ClassicCalls(TorchFunctionMode):
    """Count classic activation calls by name, outside adaptive modules."""

    def __init__(self):
        super().__init__()
        self.counts: dict[str, int] = {}
        self.depth = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if self.depth == 0 and func in CLASSIC:
            self.counts[func.__name__] = self.counts.get(func.__name__, 0) + 1
        return func(*args, **(kwargs or {}))

    def __enter__(self):
        def pre(module, args):
            self.depth += isinstance(module, AdaptiveActivation)

        def post(module, args, output):
            self.depth -= isinstance(module, AdaptiveActivation)

        self.handles = [nn.modules.module.register_module_forward_pre_hook(pre),
                        nn.modules.module.register_module_forward_hook(post)]
        return super().__enter__()

    def __exit__(self, *exc):
        for handle in self.handles:
            handle.remove()
        return super().__exit__(*exc)


def build(name):
    torch.manual_seed(0)
    models = torchvision.models
    if name == "googlenet":
        return models.googlenet(weights=None, aux_logits=False, init_weights=False)
    if name == "vit_b_16":
        model = models.vit_b_16(weights=None, image_size=32)
        nn.init.normal_(model.heads.head.weight, std=0.02)  # torchvision starts the head at zero
        return model
    return getattr(models, name)(weights=None)


def count_classic(model, x):
    with torch.no_grad(), ClassicCalls() as counter:
        model(x)
    return counter.counts


# name -> (activations that the "exact" preset leaves alone, expected replaced sites)
MODELS = {
    "resnet18": ((), 17),
    "mobilenet_v3_small": (("hardswish",), 23),
    "efficientnet_b0": ((), 65),
    "googlenet": ((), 57),
    "densenet121": ((), 121),
}


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("name", list(MODELS))
def test_exact_replacement_keeps_outputs(name):
    left_alone, expected_sites = MODELS[name]
    model = build(name).eval()
    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = model(x)
    before = count_classic(model, x)
    assert sum(before.values()) > 0
    report = replace_activations(model, "exact", example_input=x)
    assert len(report.replaced) == expected_sites
    assert {s.original.split("(")[0].rsplit(".", 1)[-1].lower() for s in report.skipped} == set(left_alone)
    with torch.no_grad():
        actual = model(x)
    torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-5 * float(expected.abs().max()))
    after = count_classic(model, x)
    assert set(after) == set(left_alone), after


def test_resnet18_reused_relu_and_training_step(tmp_path):
    pretrained = build("resnet18").state_dict()
    model = build("resnet18")
    report = replace_activations(model, "paper")
    loaded = load_pretrained(model, {"model": {f"module.{k}": v for k, v in pretrained.items()}})
    assert len(loaded.missing_adaptive) == 34
    names = {s.name for s in report.replaced}
    assert {"layer1.0.relu", "layer1.0.relu_1"} <= names
    freeze_except_activations(model)
    model.train()
    bn = model.bn1
    stats = bn.running_mean.clone()
    weights = {n: p.detach().clone() for n, p in model.named_parameters() if not n.endswith(("beta", "gamma"))}
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    x = torch.randn(2, 3, 32, 32)
    loss = F.cross_entropy(model(x), torch.tensor([1, 2]))
    loss.backward()
    optimizer.step()
    assert torch.equal(bn.running_mean, stats)
    for name, value in weights.items():
        assert torch.equal(dict(model.named_parameters())[name], value), name
    assert float(model.layer1[0].relu_1.beta.detach()) != 1.0
    path = save_adapter(model, tmp_path / "resnet.safetensors")
    base = build("resnet18")
    load_adapter(base, path)
    result = compare_models(model, base, x)
    assert result.max_abs_diff == 0.0
    assert result.class_agreement == 1.0


def test_googlenet_functional_relu_restored():
    model = build("googlenet").eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        expected = model(x)
    report = replace_activations(model, "exact")
    assert all(s.kind == "function" for s in report.replaced)
    assert "forward" in model.conv1.__dict__
    restore_activations(model)
    assert "forward" not in model.conv1.__dict__
    with torch.no_grad():
        torch.testing.assert_close(model(x), expected, rtol=0, atol=0)


def test_vit_b_16_gelu():
    model = build("vit_b_16").eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        expected = model(x)
    report = replace_activations(model, "exact", example_input=x)
    assert report.replaced == []
    assert len(report.skipped) == 12
    report = replace_activations(model, "approximate", example_input=x)
    assert len(report.replaced) == 12
    assert all(s.max_abs_error <= 0.0204 for s in report.replaced)
    assert count_classic(model, x) == {}
    with torch.no_grad():
        actual = model(x)
    assert (actual - expected).abs().max() < 0.1 * expected.abs().max()
