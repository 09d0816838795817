"""Whole-model files: round trips of base and adapted networks, clear errors, atomic writes."""

import pytest
import torch

import reactivate
from reactivate import AHAF, FNeuronActivation
from reactivate.errors import CheckpointError, ReactivateError
from reactivate.models import KerasNet
from reactivate.training import load_model, load_model_weights, save_model
from reactivate.training.checkpoint import atomic_write, save_checkpoint
from training_helpers import differing_tensors, make_tiny


def small_kerasnet(activation: str = "relu") -> KerasNet:
    torch.manual_seed(0)
    return KerasNet(in_channels=1, image_size=16, cnn_activation=activation)


def test_base_model_round_trip(tmp_path):
    model = small_kerasnet()
    save_model(tmp_path / "model.pt", model, extra={"epoch": 3, "accuracy": 0.5, "note": None})
    loaded, meta = load_model(tmp_path / "model.pt")
    assert type(loaded) is KerasNet
    assert differing_tensors(model.state_dict(), loaded.state_dict()) == []
    assert meta["model_config"] == model.model_config
    assert meta["extra"] == {"epoch": 3, "accuracy": 0.5, "note": None}
    assert meta["replacement_spec"] is None
    assert not loaded.training


@pytest.mark.parametrize(("activation", "adaptive_type"), [("relu", AHAF), ("tanh", FNeuronActivation)])
def test_replaced_model_round_trip(tmp_path, activation, adaptive_type):
    model = small_kerasnet(activation)
    reactivate.replace_activations(model, "paper")
    with torch.no_grad():
        for parameter in reactivate.activation_parameters(model):
            parameter.add_(0.01)  # trained values, not the start values a rebuild would have
    save_model(tmp_path / "adapted.pt", model)

    loaded, meta = load_model(tmp_path / "adapted.pt")
    assert meta["replacement_spec"] == reactivate.replacement_spec(model)
    assert isinstance(loaded.ffn_act, adaptive_type)
    assert differing_tensors(model.state_dict(), loaded.state_dict()) == []
    inputs = torch.rand(4, 1, 16, 16)
    model.eval()
    assert torch.equal(model(inputs), loaded(inputs))


def test_model_without_config_is_rejected(tmp_path):
    with pytest.raises(ReactivateError, match="TinyNet has no model_config"):
        save_model(tmp_path / "tiny.pt", make_tiny())
    assert not (tmp_path / "tiny.pt").exists()


def test_extra_with_object_is_rejected(tmp_path):
    with pytest.raises(ReactivateError, match=r"extra\['when'\] has type object"):
        save_model(tmp_path / "model.pt", small_kerasnet(), extra={"when": object()})


def test_missing_file_error(tmp_path):
    with pytest.raises(CheckpointError, match="model file .*absent.pt' not found"):
        load_model(tmp_path / "absent.pt")


def test_foreign_file_error(tmp_path):
    path = tmp_path / "notes.pt"
    path.write_text("plain text")
    with pytest.raises(CheckpointError, match="is not a readable model file") as raised:
        load_model(path)
    assert "\n" not in str(raised.value)
    # torch's advice to load with weights_only=False must not reach the user.
    assert "weights_only` set to `False" not in str(raised.value)


def test_training_checkpoint_is_not_model_file(tmp_path):
    save_checkpoint(tmp_path / "checkpoint.pt", {"model": {}})
    with pytest.raises(CheckpointError, match="is not a reactivate model file; write one with save_model"):
        load_model(tmp_path / "checkpoint.pt")


def test_weights_into_other_architecture(tmp_path):
    save_model(tmp_path / "model.pt", small_kerasnet())
    with pytest.raises(CheckpointError, match="do not fit the model.*missing .*key"):
        load_model_weights(tmp_path / "model.pt", make_tiny())
    wider = KerasNet(in_channels=1, image_size=16, num_classes=7)
    with pytest.raises(CheckpointError, match=r"fc2.weight has shape \(10, 512\) in the file but \(7, 512\)"):
        load_model_weights(tmp_path / "model.pt", wider)


def test_adapted_weights_into_base_model(tmp_path):
    model = small_kerasnet()
    reactivate.replace_activations(model, "paper")
    save_model(tmp_path / "adapted.pt", model)
    with pytest.raises(CheckpointError, match="unexpected key.*beta"):
        load_model_weights(tmp_path / "adapted.pt", small_kerasnet())


def test_failed_write_keeps_old_file(tmp_path):
    path = tmp_path / "model.pt"
    path.write_bytes(b"old")

    def write_then_fail(handle):
        handle.write(b"partial")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(path, write_then_fail)
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]


def test_save_model_swapped_arguments(tmp_path):
    with pytest.raises(ReactivateError, match=r"save_model\(path, model\)"):
        save_model(KerasNet(), tmp_path / "model.pt")
    assert not (tmp_path / "model.pt").exists()
