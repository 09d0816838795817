"""TrainConfig: defaults from Bodyanskiy & Kostiuk (ICST 2023), validation messages, the dict round trip."""

import json

import pytest

from reactivate.training import TrainConfig


def test_defaults_match_paper_setup():
    config = TrainConfig()
    assert config.lr == 1e-4
    assert config.rmsprop_alpha == 0.9
    assert config.eps == 1e-7
    assert config.momentum == 0.0
    assert config.batch_size == 64
    assert config.test_batch_size == 1000
    assert config.seed == 42
    assert config.deterministic is True
    assert config.epochs == 100
    assert config.augment is True
    assert config.trainable == "all"


def test_dict_round_trip_through_json():
    config = TrainConfig(epochs=3, lr=0.01, trainable="activations", epoch_offset=100, device="cpu")
    restored = TrainConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert restored == config


def test_from_dict_fills_missing_fields_with_defaults():
    assert TrainConfig.from_dict({"epochs": 7}) == TrainConfig(epochs=7)


def test_from_dict_rejects_unknown_field():
    with pytest.raises(ValueError, match="unknown TrainConfig field.*learning_rate"):
        TrainConfig.from_dict({"learning_rate": 0.1})


def test_integer_float_is_accepted_as_float():
    config = TrainConfig(lr=1, momentum=0)
    assert isinstance(config.lr, float)
    assert config.lr == 1.0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("epochs", -1),
        ("epochs", 2.5),
        ("batch_size", 0),
        ("batch_size", True),
        ("test_batch_size", 0),
        ("lr", 0.0),
        ("lr", float("nan")),
        ("lr", float("inf")),
        ("lr", "0.1"),
        ("rmsprop_alpha", 1.0),
        ("rmsprop_alpha", -0.1),
        ("eps", 0.0),
        ("momentum", -0.5),
        ("weight_decay", -1e-4),
        ("seed", -1),
        ("flip_p", 1.5),
        ("max_shift", 1.0),
        ("augment", 1),
        ("deterministic", "yes"),
        ("progress", None),
        ("trainable", "weights"),
        ("device", "gpu7"),
        ("device", 0),
        ("epoch_offset", -3),
        ("sync_batchnorm", 0),
    ],
)
def test_invalid_value_names_field_and_value(field, value):
    with pytest.raises(ValueError) as raised:
        TrainConfig(**{field: value})
    message = str(raised.value)
    assert f"TrainConfig.{field}" in message
    assert repr(value) in message or str(value) in message
    assert "\n" not in message


def test_differences_lists_changed_fields():
    first = TrainConfig(lr=0.1, epochs=5)
    second = TrainConfig(lr=0.2, epochs=9)
    assert first.differences(second) == {"lr": (0.1, 0.2), "epochs": (5, 9)}
    assert first.differences(second, ignore=frozenset({"epochs"})) == {"lr": (0.1, 0.2)}
