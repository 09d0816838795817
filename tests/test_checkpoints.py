"""Tests of pre-trained weight loading with a key audit, and of adapter files."""

from __future__ import annotations

import os

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from reactivate import (
    activation_parameters,
    load_adapter,
    load_pretrained,
    replace_activations,
    save_adapter,
)
from reactivate.errors import CheckpointError


def base_model(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(64, 3), nn.Tanh())


def pretrained_state():
    return {k: v.clone() for k, v in base_model(seed=7).state_dict().items()}


@pytest.fixture
def model():
    m = base_model()
    replace_activations(m, "paper")
    return m


def assert_loaded(model, state):
    for key, value in state.items():
        assert torch.equal(model.state_dict()[key], value), key


@pytest.mark.parametrize("wrap", [
    lambda s: s,
    lambda s: {"state_dict": s, "epoch": 3},
    lambda s: {"model": s, "optimizer": {"lr": 0.1}},
    lambda s: {"model_state_dict": s},
    lambda s: {"net": s},
    lambda s: {"checkpoint": 1, "model": {"state_dict": s}},
    lambda s: {f"module.{k}": v for k, v in s.items()},
    lambda s: {f"_orig_mod.{k}": v for k, v in s.items()},
    lambda s: {"state_dict": {f"module._orig_mod.{k}": v for k, v in s.items()}},
], ids=["plain", "state_dict", "model", "model_state_dict", "net", "nested", "ddp", "compile", "ddp+compile"])
def test_load_pretrained_layouts(model, wrap, tmp_path):
    state = pretrained_state()
    result = load_pretrained(model, wrap(state))
    assert_loaded(model, state)
    assert sorted(result.missing_adaptive) == ["2.beta", "2.gamma", "5.weight"]
    path = tmp_path / "checkpoint.pt"
    torch.save(wrap(state), path)
    fresh = base_model()
    replace_activations(fresh, "paper")
    load_pretrained(fresh, path)
    assert_loaded(fresh, state)


def test_load_pretrained_safetensors(model, tmp_path):
    state = pretrained_state()
    path = tmp_path / "weights.safetensors"
    save_file(state, str(path))
    load_pretrained(model, path)
    assert_loaded(model, state)


def test_adaptive_keys_keep_start_values(model):
    load_pretrained(model, pretrained_state())
    assert float(model[2].beta.detach()) == 1.0


def test_missing_key_is_error(model):
    state = pretrained_state()
    del state["4.weight"]
    with pytest.raises(CheckpointError, match=r"missing keys: 4\.weight"):
        load_pretrained(model, state)


def test_unexpected_key_is_error_and_model_untouched(model):
    state = pretrained_state()
    state["extra.weight"] = torch.zeros(2)
    before = model[0].weight.detach().clone()
    with pytest.raises(CheckpointError, match=r"unexpected keys: extra\.weight"):
        load_pretrained(model, state)
    assert torch.equal(model[0].weight, before)


def test_wrong_shape_is_error(model):
    state = pretrained_state()
    state["4.weight"] = torch.zeros(3, 10)
    with pytest.raises(CheckpointError, match=r"4\.weight \(checkpoint \(3, 10\), model \(3, 64\)\)"):
        load_pretrained(model, state)


def test_not_a_checkpoint_file(model, tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    with pytest.raises(CheckpointError, match="not a PyTorch checkpoint"):
        load_pretrained(model, path)


def test_truncated_checkpoint(model, tmp_path):
    path = tmp_path / "checkpoint.pt"
    torch.save(pretrained_state(), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        load_pretrained(model, path)


class Payload:
    pass


def test_pickled_code_is_refused(model, tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"state_dict": pretrained_state(), "obj": Payload()}, path)
    with pytest.raises(CheckpointError, match="can run code"):
        load_pretrained(model, path)


def test_missing_file(model, tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_pretrained(model, tmp_path / "absent.pt")


def test_dict_without_state_dict(model):
    with pytest.raises(CheckpointError, match="found no state dict"):
        load_pretrained(model, {"epoch": 1, "lr": 0.1})


def test_adapter_holds_only_adaptive_tensors(model, tmp_path):
    from safetensors import safe_open

    path = save_adapter(model, tmp_path / "adapter")
    assert path.name == "adapter.safetensors"
    with safe_open(str(path), "pt") as handle:
        assert sorted(handle.keys()) == ["2.beta", "2.gamma", "5.weight"]
        assert handle.metadata()["format"] == "reactivate-adapter"
    assert [p for p in os.listdir(tmp_path)] == ["adapter.safetensors"]


def test_adapter_round_trip_after_training(model, tmp_path):
    load_pretrained(model, pretrained_state())
    with torch.no_grad():
        for p in activation_parameters(model):
            p.mul_(1.5)
    path = save_adapter(model, tmp_path / "a.safetensors")
    fresh = base_model()
    load_pretrained(fresh, pretrained_state())
    assert load_adapter(fresh, path) == 3
    x = torch.randn(2, 1, 6, 6)
    model.eval()
    fresh.eval()
    assert torch.equal(model(x), fresh(x))


def test_adapter_into_already_replaced_model(model, tmp_path):
    path = save_adapter(model, tmp_path / "a.safetensors")
    other = base_model()
    replace_activations(other, "paper")
    assert load_adapter(other, path) == 3
    different = base_model()
    replace_activations(different, "exact")
    with pytest.raises(CheckpointError, match="differ"):
        load_adapter(different, path)


def test_adapter_wrong_base_leaves_model_unchanged(model, tmp_path):
    path = save_adapter(model, tmp_path / "a.safetensors")
    other = nn.Sequential(nn.Linear(3, 3), nn.Sigmoid())
    with pytest.raises(CheckpointError, match="cannot apply adapter"):
        load_adapter(other, path)
    assert type(other[1]) is nn.Sigmoid


def test_plain_safetensors_is_not_an_adapter(model, tmp_path):
    path = tmp_path / "w.safetensors"
    save_file(pretrained_state(), str(path))
    with pytest.raises(CheckpointError, match="without reactivate adapter metadata"):
        load_adapter(base_model(), path)


def test_save_adapter_needs_replacement(tmp_path):
    with pytest.raises(ValueError, match="no replaced activations"):
        save_adapter(base_model(), tmp_path / "a.safetensors")
