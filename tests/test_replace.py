"""Tests of the replacement engine on a table of tiny models and every activation kind."""

from __future__ import annotations

import copy
import json
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

import reactivate
from reactivate import (
    AHAF,
    LEAF,
    AdaptiveActivation,
    FNeuronActivation,
    ReactivateError,
    ReactivateWarning,
    freeze_except_activations,
    load_adapter,
    reapply_replacement,
    replace_activations,
    replacement_spec,
    restore_activations,
    save_adapter,
)
from reactivate.rules import known_presets, register_activation, register_family

# kind -> (module factory, functional call, in-place call, preset that reproduces it)
KINDS = {
    "relu": (lambda: nn.ReLU(inplace=True), F.relu, lambda y: F.relu(y, inplace=True), "exact"),
    "silu": (lambda: nn.SiLU(inplace=True), F.silu, lambda y: F.silu(y, inplace=True), "exact"),
    "tanh": (nn.Tanh, torch.tanh, lambda y: y.tanh_(), "exact"),
    "sigmoid": (nn.Sigmoid, torch.sigmoid, lambda y: y.sigmoid_(), "exact"),
    "relu6": (lambda: nn.ReLU6(inplace=True), F.relu6, lambda y: F.relu6(y, inplace=True), "exact"),
    "hardtanh": (lambda: nn.Hardtanh(-2.0, 2.0, inplace=True), lambda y: F.hardtanh(y, -2.0, 2.0),
                 lambda y: F.hardtanh(y, -2.0, 2.0, inplace=True), "exact"),
    "hardsigmoid": (lambda: nn.Hardsigmoid(inplace=True), F.hardsigmoid,
                    lambda y: F.hardsigmoid(y, inplace=True), "exact"),
    "gelu": (nn.GELU, F.gelu, None, "approximate"),
}


class SequentialNet(nn.Sequential):
    def __init__(self, kind):
        super().__init__(nn.Linear(6, 16), KINDS[kind][0](), nn.Linear(16, 3))


class FunctionalNet(nn.Module):
    def __init__(self, kind):
        super().__init__()
        self.kind = kind
        self.fc1 = nn.Linear(6, 16)
        self.fc2 = nn.Linear(16, 3)

    def forward(self, x):
        return self.fc2(KINDS[self.kind][1](self.fc1(x)))


class ReusedNet(nn.Module):
    def __init__(self, kind):
        super().__init__()
        self.fc1 = nn.Linear(6, 16)
        self.fc2 = nn.Linear(16, 16)
        self.fc3 = nn.Linear(16, 3)
        self.act = KINDS[kind][0]()

    def forward(self, x):
        return self.fc3(self.act(self.fc2(self.act(self.fc1(x)))))


class InplaceResidualNet(nn.Module):
    """Reads a tensor after an activation overwrote it in place."""

    def __init__(self, kind):
        super().__init__()
        self.kind = kind
        self.fc1 = nn.Linear(6, 6)
        self.fc2 = nn.Linear(6, 3)
        self.act = KINDS[kind][0]()

    def forward(self, x):
        y = self.fc1(x)
        if KINDS[self.kind][2] is not None:
            KINDS[self.kind][2](y)  # result discarded: y itself was changed
        z = self.fc1(x)
        a = self.act(z)  # an in-place module returns z itself
        return self.fc2(y + z + a + x)


class Inner(nn.Module):
    def __init__(self, kind):
        super().__init__()
        self.kind = kind
        self.fc = nn.Linear(8, 8)
        self.act = KINDS[kind][0]()

    def forward(self, x):
        return KINDS[self.kind][1](self.fc(self.act(x))) + x


class NestedNet(nn.Module):
    def __init__(self, kind):
        super().__init__()
        self.stem = nn.Linear(6, 8)
        self.blocks = nn.ModuleList([Inner(kind), Inner(kind)])
        self.head = nn.Sequential(nn.Linear(8, 4), KINDS[kind][0](), nn.Linear(4, 3))

    def forward(self, x):
        x = self.stem(x)
        for block in self.blocks:
            x = block(x)
        return self.head(x)


class BatchNormNet(nn.Module):
    def __init__(self, kind):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), KINDS[kind][0](), nn.Dropout(0.2))
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        x = self.features(x)
        return self.fc(x.mean((2, 3)))


MODELS = {
    "sequential": (SequentialNet, (5, 6)),
    "functional": (FunctionalNet, (5, 6)),
    "reused": (ReusedNet, (5, 6)),
    "inplace_residual": (InplaceResidualNet, (5, 6)),
    "nested": (NestedNet, (5, 6)),
    "batchnorm": (BatchNormNet, (5, 2, 4, 4)),
}
CASES = [(m, k) for m in MODELS for k in KINDS]


def make(model_name, kind, seed=0):
    torch.manual_seed(seed)
    cls, shape = MODELS[model_name]
    model = cls(kind).eval()
    x = 3 * torch.randn(*shape, generator=torch.Generator().manual_seed(1))
    return model, x


class ClassicCallCounter(TorchFunctionMode):
    """Count classic activation calls made outside adaptive modules."""

    NAMES = {"relu", "relu_", "silu", "tanh", "tanh_", "sigmoid", "sigmoid_", "relu6", "hardtanh",
             "hardtanh_", "hardsigmoid", "gelu", "hardswish"}

    def __init__(self):
        super().__init__()
        self.calls = 0
        self.depth = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if self.depth == 0 and getattr(func, "__name__", "") in self.NAMES:
            self.calls += 1
        return func(*args, **(kwargs or {}))

    def __enter__(self):
        counter = self

        def pre(module, args):
            if isinstance(module, AdaptiveActivation):
                counter.depth += 1

        def post(module, args, output):
            if isinstance(module, AdaptiveActivation):
                counter.depth -= 1

        self.handles = [nn.modules.module.register_module_forward_pre_hook(pre),
                        nn.modules.module.register_module_forward_hook(post)]
        return super().__enter__()

    def __exit__(self, *exc):
        for handle in self.handles:
            handle.remove()
        return super().__exit__(*exc)


def run(model, x):
    return model(x.clone())


@pytest.mark.parametrize("model_name,kind", CASES)
def test_table_output_unchanged(model_name, kind):
    model, x = make(model_name, kind)
    with torch.no_grad():
        expected = run(model, x)
    report = replace_activations(model, KINDS[kind][3], example_input=x)
    assert len(report.replaced) > 0
    assert report.skipped == []
    with torch.no_grad():
        actual = run(model, x)
        with ClassicCallCounter() as counter:
            run(model, x)
    assert counter.calls == 0
    tolerance = 1e-5 if kind != "gelu" else 0.0203 * 20
    assert (actual - expected).abs().max() <= tolerance * max(1.0, float(expected.abs().max()))
    assert report.output_max_abs_error == pytest.approx(float((actual - expected).abs().max()), abs=1e-6)


@pytest.mark.parametrize("model_name,kind", CASES)
def test_table_only_activations_trainable(model_name, kind):
    model, x = make(model_name, kind)
    replace_activations(model, KINDS[kind][3])
    summary = freeze_except_activations(model)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    adaptive = {f"{name}.{p}" for name, m in model.named_modules() if isinstance(m, AdaptiveActivation)
                for p, _ in m.named_parameters()}
    assert trainable == adaptive
    assert summary.trainable == summary.activation
    model.train()
    loss = model(x.clone()).square().mean()
    loss.backward()
    assert all(p.grad is None for n, p in model.named_parameters() if n not in adaptive)


@pytest.mark.parametrize("model_name,kind", CASES)
def test_table_adapter_round_trip(model_name, kind, tmp_path):
    model, x = make(model_name, kind)
    replace_activations(model, KINDS[kind][3])
    with torch.no_grad():
        for p in reactivate.activation_parameters(model):
            p.add_(0.05 * torch.randn_like(p))
        expected = run(model, x)
    path = save_adapter(model, tmp_path / "adapter")
    fresh, _ = make(model_name, kind)
    load_adapter(fresh, path)
    with torch.no_grad():
        actual = run(fresh, x)
    assert torch.equal(actual, expected)
    assert replacement_spec(fresh) == replacement_spec(model)


@pytest.mark.parametrize("kind", ["relu", "silu", "sigmoid", "hardtanh"])
def test_inplace_residual_gradients_match(kind):
    original, x = make("inplace_residual", kind)
    original.train()
    replaced = copy.deepcopy(original)
    report = replace_activations(replaced, "exact", example_input=x)
    assert any(site.inplace for site in report.replaced)
    original(x.clone()).sum().backward()
    replaced(x.clone()).sum().backward()
    for (name, a), (_, b) in zip(original.named_parameters(), replaced.named_parameters()):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-4, atol=1e-5, msg=name)


def test_inplace_write_needed_only_when_read_later():
    model, x = make("inplace_residual", "relu")
    report = replace_activations(model, "exact")
    flags = {site.name: site.inplace for site in report.replaced}
    assert flags == {"act": True, "relu": True}
    model, _ = make("batchnorm", "relu")
    report = replace_activations(model, "exact")
    assert [site.inplace for site in report.replaced] == [False]


@pytest.mark.parametrize("call", [
    torch.relu, F.relu, lambda y: y.relu(), lambda y: y.clone().relu_(), lambda y: torch.relu_(y.clone()),
    lambda y: F.relu_(y.clone()), lambda y: F.relu(y.clone(), True),
], ids=["torch.relu", "F.relu", "Tensor.relu", "Tensor.relu_", "torch.relu_", "F.relu_", "F.relu-positional"])
def test_functional_spellings_of_relu(call):
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x):
            return call(self.fc(x))

    torch.manual_seed(0)
    model = Net()
    x = torch.randn(3, 4)
    expected = model(x)
    report = replace_activations(model, "paper")
    assert [s.kind for s in report.replaced] == ["function"]
    assert isinstance(model.get_submodule(report.replaced[0].name), AHAF)
    torch.testing.assert_close(model(x), expected)


def test_reused_module_gets_one_module_per_call():
    model, x = make("reused", "silu")
    report = replace_activations(model, "paper")
    assert [(s.name, s.kind) for s in report.replaced] == [("act", "module"), ("act_1", "call")]
    assert model.act is not model.act_1
    assert set(model.state_dict()) >= {"act.beta", "act_1.beta"}


def test_reused_module_shared_on_request():
    model, x = make("reused", "silu")
    expected = model(x)
    report = replace_activations(model, "paper", share_reused=True)
    assert [s.name for s in report.replaced] == ["act"]
    assert len(reactivate.activation_parameters(model)) == 2
    torch.testing.assert_close(model(x), expected)


def test_module_registered_twice_gets_two_modules():
    act = nn.Tanh()
    model = nn.Sequential(nn.Linear(3, 3), act, nn.Linear(3, 3), act)
    report = replace_activations(model, "exact")
    assert [s.name for s in report.replaced] == ["1", "3"]
    assert model[1] is not model[3]


def test_state_dict_keeps_original_keys_and_weights():
    model, x = make("nested", "relu")
    before = {k: v for k, v in model.state_dict(keep_vars=True).items()}
    replace_activations(model, "paper")
    after = model.state_dict(keep_vars=True)
    for key, tensor in before.items():
        assert after[key] is tensor
    added = set(after) - set(before)
    assert added == {"blocks.0.act.beta", "blocks.0.act.gamma", "blocks.0.relu.beta", "blocks.0.relu.gamma",
                     "blocks.1.act.beta", "blocks.1.act.gamma", "blocks.1.relu.beta", "blocks.1.relu.gamma",
                     "head.1.beta", "head.1.gamma"}
    assert type(model.blocks[0]) is Inner


def test_paper_preset_families():
    for kind, family in [("relu", AHAF), ("silu", AHAF), ("tanh", FNeuronActivation), ("sigmoid", FNeuronActivation)]:
        model, _ = make("sequential", kind)
        replace_activations(model, "paper")
        assert type(model[1]) is family
    model, _ = make("sequential", "tanh")
    replace_activations(model, "paper")
    assert model[1].num_functions == 18
    assert tuple(model[1].interval) == (-4.0, 4.0)


def test_exact_preset_uses_leaf_for_tanh_and_sigmoid():
    for kind in ("tanh", "sigmoid"):
        model, _ = make("sequential", kind)
        report = replace_activations(model, "exact")
        assert type(model[1]) is LEAF
        assert report.replaced[0].exact


def test_unsupported_activation_reported():
    model = nn.Sequential(nn.Linear(3, 3), nn.LeakyReLU(0.2), nn.Hardswish(), nn.ReLU())
    report = replace_activations(model, "exact")
    assert [s.name for s in report.replaced] == ["3"]
    reasons = {s.name: s.reason for s in report.skipped}
    assert set(reasons) == {"1", "2"}
    assert "leaky_relu" in reasons["1"]
    assert type(model[1]) is nn.LeakyReLU


def test_dry_run_leaves_model_unchanged():
    model, x = make("nested", "relu")
    modules = dict(model.named_modules())
    report = replace_activations(model, "paper", dry_run=True, example_input=x)
    assert report.dry_run and len(report.replaced) == 5
    assert dict(model.named_modules()) == modules
    assert "forward" not in model.blocks[0].__dict__
    assert "Would replace 5" in report.to_markdown()


def test_failed_call_leaves_model_unchanged():
    model, x = make("nested", "relu")
    keys = list(model.state_dict())
    modules = dict(model.named_modules())
    with pytest.raises(ReactivateError, match="example_input"):
        replace_activations(model, "paper", example_input=torch.randn(2, 99))
    bad_preset = {"relu": "ahaf", "tanh": lambda original: {"family": "ahaf", "init": "tanh"}}
    mixed = nn.Sequential(nn.Linear(3, 3), nn.ReLU(), nn.Tanh())
    with pytest.raises(ReactivateError, match="cannot build"):
        replace_activations(mixed, bad_preset)
    assert type(mixed[1]) is nn.ReLU
    assert list(model.state_dict()) == keys
    assert dict(model.named_modules()) == modules
    assert all("forward" not in m.__dict__ for m in model.modules())


def test_unknown_preset_lists_known():
    with pytest.raises(ReactivateError) as info:
        replace_activations(nn.ReLU(), "papr")
    for name in known_presets():
        assert name in str(info.value)


def test_channel_granularity_needs_example_input():
    model, x = make("batchnorm", "relu")
    with pytest.raises(ReactivateError, match="example_input"):
        replace_activations(model, "paper", granularity="channel")
    with pytest.raises(ReactivateError, match="granularity"):
        replace_activations(model, "paper", granularity="pixel")


def test_channel_and_neuron_shapes_from_example_input():
    model, x = make("batchnorm", "tanh")
    expected = model(x)
    replace_activations(model, "exact", granularity="channel", example_input=x)
    assert model.features[2].p1.shape == (4,)
    torch.testing.assert_close(model(x), expected)
    model, x = make("batchnorm", "silu")
    replace_activations(model, "paper", granularity="neuron", example_input=x)
    assert model.features[2].beta.shape == (4, 4, 4)


def test_neuron_granularity_with_changing_shapes_skips():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.act = nn.ReLU()

        def forward(self, x):
            return self.act(x).sum() + self.act(x[:, :2]).sum()

    model = Net()
    report = replace_activations(model, "paper", granularity="neuron", example_input=torch.randn(2, 4),
                                 share_reused=True)
    assert report.replaced == []
    assert "different shapes" in report.skipped[0].reason


def test_calibrate_takes_interval_from_observed_range():
    model, x = make("sequential", "tanh")
    report = replace_activations(model, "paper", example_input=x, calibrate=True)
    low, high = report.replaced[0].observed_range
    interval = model[1].interval
    assert interval[0] <= low
    assert interval[1] >= high
    assert interval[0] > low - 0.25
    assert interval[1] < high + 0.25
    assert report.replaced[0].max_abs_error is not None


def test_include_exclude_and_filter():
    model, x = make("nested", "relu")
    report = replace_activations(model, "paper", include=r"^head\.")
    assert [s.name for s in report.replaced] == ["head.1"]
    model, x = make("nested", "relu")
    report = replace_activations(model, "paper", exclude=[r"blocks\.1"])
    assert {s.name for s in report.replaced} == {"blocks.0.act", "blocks.0.relu", "head.1"}
    model, x = make("nested", "relu")
    report = replace_activations(model, "paper", filter_fn=lambda module, name: name.endswith(".relu"))
    assert {s.name for s in report.replaced} == {"blocks.0.relu", "blocks.1.relu"}
    model, x = make("reused", "relu")
    report = replace_activations(model, "paper", include=r"^act$")
    assert [s.name for s in report.replaced] == ["act", "act_1"]


def test_types_filter_includes_functional_equivalents():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 3)
            self.act = nn.Tanh()

        def forward(self, x):
            return self.act(F.relu(self.fc(x)))

    model = Net()
    report = replace_activations(model, "paper", types=nn.ReLU)
    assert [s.name for s in report.replaced] == ["relu"]


def test_unmatched_exclude_warns():
    model, _ = make("sequential", "relu")
    with pytest.warns(ReactivateWarning, match="nothing_here"):
        replace_activations(model, "paper", exclude="nothing_here")


def test_invalid_regex_is_error():
    model, _ = make("sequential", "relu")
    with pytest.raises(ReactivateError, match="regular expression"):
        replace_activations(model, "paper", include="(")


class Untraceable(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 3)
        self.act = nn.Tanh()

    def forward(self, x):
        if x.sum() > 0:  # data-dependent control flow stops fx
            x = x * 2
        return self.act(F.relu(self.fc(x)))


def test_untraceable_module_warns_and_converts_modules():
    model = nn.Sequential(Untraceable(), nn.Linear(3, 2))
    with pytest.warns(ReactivateWarning, match="could not trace"):
        report = replace_activations(model, "paper")
    assert [s.name for s in report.replaced] == ["0.act"]
    assert report.unreached and report.unreached[0][0] == "0"
    model = nn.Sequential(Untraceable(), nn.Linear(3, 2))
    with pytest.raises(ReactivateError, match="strict_trace"):
        replace_activations(model, "paper", strict_trace=True)
    assert type(model[0].act) is nn.Tanh


def test_restore_puts_originals_back():
    model, x = make("nested", "sigmoid")
    expected = model(x)
    replace_activations(model, "paper")
    assert restore_activations(model) == 5
    assert type(model.blocks[0].act) is nn.Sigmoid
    assert "forward" not in model.blocks[0].__dict__
    assert not any(isinstance(m, AdaptiveActivation) for m in model.modules())
    torch.testing.assert_close(model(x), expected, rtol=0, atol=0)
    with pytest.warns(ReactivateWarning):
        assert restore_activations(model) == 0


def test_spec_is_json_and_reapplies():
    model, x = make("nested", "silu")
    replace_activations(model, "paper")
    spec = json.loads(json.dumps(replacement_spec(model)))
    assert spec["library_version"] == reactivate.__version__
    kinds = {s["name"]: s["kind"] for s in spec["rounds"][0]["sites"]}
    assert kinds["blocks.0.silu"] == "function"
    fresh, _ = make("nested", "silu")
    assert reapply_replacement(fresh, spec) == 5
    fresh.load_state_dict(model.state_dict())
    torch.testing.assert_close(fresh(x), model(x), rtol=0, atol=0)
    with pytest.raises(ReactivateError, match="already"):
        reapply_replacement(fresh, spec)
    other, _ = make("nested", "tanh")
    with pytest.raises(ReactivateError, match="expects silu"):
        reapply_replacement(other, spec)
    assert not any(isinstance(m, AdaptiveActivation) for m in other.modules())


def test_second_round_and_reapply():
    model, x = make("nested", "relu")
    replace_activations(model, "paper", include="blocks.0")
    replace_activations(model, "paper")
    spec = replacement_spec(model)
    assert len(spec["rounds"]) == 2
    fresh, _ = make("nested", "relu")
    reapply_replacement(fresh, spec)
    fresh.load_state_dict(model.state_dict())
    torch.testing.assert_close(fresh(x), model(x))


def test_deepcopy_of_rewritten_model():
    model, x = make("nested", "relu")
    replace_activations(model, "paper")
    twin = copy.deepcopy(model)
    with torch.no_grad():
        twin.blocks[0].relu.beta.fill_(2.0)
    assert float(model.blocks[0].relu.beta.detach()) == 1.0
    assert not torch.equal(twin(x), model(x))


def test_registered_third_party_class_and_family():
    class ThirdPartyGELU(nn.Module):
        def __init__(self, approximate="tanh"):
            super().__init__()
            self.approximate = approximate

        def forward(self, x):
            return F.gelu(x, approximate=self.approximate)

    register_activation(ThirdPartyGELU, "gelu", lambda m: {"approximate": m.approximate})

    class DoubledAHAF(AHAF):
        family = "doubled_ahaf"

    register_family("doubled_ahaf", DoubledAHAF)
    model = nn.Sequential(nn.Linear(3, 3), ThirdPartyGELU())
    seen = []

    def factory(original):
        seen.append(original)
        return {"family": "doubled_ahaf", "init": "gelu"}

    replace_activations(model, {"gelu": factory})
    assert type(model[1]) is DoubledAHAF
    assert seen[0].kwargs == {"approximate": "tanh"} and isinstance(seen[0].module, ThirdPartyGELU)
    with pytest.raises(ReactivateError, match="known families"):
        replace_activations(nn.Sequential(nn.ReLU()), {"relu": "no_such_family"})


def test_factory_receives_original_settings():
    model = nn.Sequential(nn.Linear(3, 3), nn.Hardtanh(-3.0, 1.0))
    x = 4 * torch.randn(50, 3)
    expected = model(x)
    report = replace_activations(model, "exact")
    assert model[1].init_kwargs["min_val"] == -3.0
    assert model[1].init_kwargs["max_val"] == 1.0
    assert report.replaced[0].exact
    torch.testing.assert_close(model(x), expected)


def test_report_formats():
    model, x = make("nested", "tanh")
    model.head[1] = nn.GELU()
    report = replace_activations(model, "paper", example_input=x)
    text = str(report)
    assert "blocks.0.act" in text
    assert "fneuron" in text
    assert "left alone" in text
    markdown = report.to_markdown()
    assert "| site |" in markdown
    assert "| left alone |" in markdown
    data = json.loads(json.dumps(report.to_dict()))
    assert len(data["replaced"]) == 4
    assert data["skipped"][0]["name"] == "head.1"
    assert data["replaced"][0]["max_abs_error"] > 0


def test_example_input_catches_trace_specialisation():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 3)

        def forward(self, x, scale=None):
            if scale is not None:  # under fx, scale is a Proxy, so the trace keeps this branch
                x = x * scale
            return torch.tanh(self.fc(x))

    model = Net()
    with pytest.raises(ReactivateError, match="fx fixed while tracing"):
        replace_activations(model, "paper", example_input=torch.randn(2, 3))
    assert "forward" not in model.__dict__
    assert not hasattr(model, "tanh")


def test_training_flags_restored_after_calibration():
    model, x = make("batchnorm", "relu")
    model.train()
    stats = model.features[1].running_mean.clone()
    replace_activations(model, "paper", example_input=x)
    assert model.training and model.features[1].training
    assert torch.equal(model.features[1].running_mean, stats)


def test_no_warnings_on_clean_model():
    model, x = make("nested", "relu")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        replace_activations(model, "paper", example_input=x)


def test_transformer_layer_module_and_functional():
    layer = nn.TransformerEncoderLayer(8, 2, 16, activation=nn.ReLU(), batch_first=True).eval()
    x = torch.randn(2, 3, 8)
    with torch.no_grad():
        expected = layer(x)
    replace_activations(layer, "paper")
    with torch.no_grad(), ClassicCallCounter() as counter:
        actual = layer(x)  # eval without gradients would take the fused fast path
    assert counter.calls == 0
    torch.testing.assert_close(actual, expected)
    functional = nn.TransformerEncoderLayer(8, 2, 16, activation="relu", batch_first=True)
    with pytest.warns(ReactivateWarning, match="TransformerEncoderLayer"):
        report = replace_activations(nn.Sequential(functional), "paper")
    assert report.unreached[0][0] == "0"


def test_preset_with_unknown_activation_lists_known():
    with pytest.raises(ReactivateError, match="unknown activation 'rleu'.*leaky_relu"):
        replace_activations(nn.Sequential(nn.ReLU()), {"rleu": "ahaf"})


@pytest.mark.parametrize("activation,family,count", [("relu", AHAF, 5), ("silu", AHAF, 5),
                                                      ("tanh", FNeuronActivation, 1),
                                                      ("sigmoid", FNeuronActivation, 1)])
def test_kerasnet_paper_setups(activation, family, count):
    models = pytest.importorskip("reactivate.models")
    torch.manual_seed(0)
    model = models.KerasNet(cnn_activation=activation).eval()
    x = torch.rand(2, 3, 32, 32)
    # Bodyanskiy and Kostiuk (ICST 2023) make ReLU and SiLU adaptive in every layer,
    # Tanh and Sigmoid only after the 512-unit layer.
    include = None if activation in ("relu", "silu") else r"^ffn_act$"
    report = replace_activations(model, "paper", include=include, example_input=x)
    assert len(report.replaced) == count
    assert type(model.ffn_act) is family
    assert report.output_max_abs_error < 0.01


def test_channel_adapter_round_trip(tmp_path):
    model, x = make("batchnorm", "sigmoid")
    replace_activations(model, "paper", granularity="channel", example_input=x)
    with torch.no_grad():
        model.features[2].weight.add_(0.1 * torch.randn_like(model.features[2].weight))
        expected = model(x)
    path = save_adapter(model, tmp_path / "channel.safetensors")
    fresh, _ = make("batchnorm", "sigmoid")
    load_adapter(fresh, path)
    assert fresh.features[2].weight.shape == (4, 18)
    assert torch.equal(fresh(x), expected)


def test_parameters_follow_model_dtype():
    model, x = make("functional", "silu")
    model.double()
    replace_activations(model, "paper")
    assert model.silu.beta.dtype == torch.float64
    model, x = make("sequential", "tanh")
    model.double()
    replace_activations(model, "paper", example_input=x.double())
    assert model[1].weight.dtype == torch.float64
