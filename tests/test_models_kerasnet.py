"""KerasNet layout, shapes, parameter count, config round trip and argument checks."""

import json

import pytest
import torch
from torch import nn

from reactivate import AHAF, FNeuronActivation
from reactivate.models import KerasNet, build_model

LAYER_NAMES = [
    "conv1", "cnn_act1", "conv2", "cnn_act2", "pool1", "drop1",
    "conv3", "cnn_act3", "conv4", "cnn_act4", "pool2", "drop2",
    "flatten", "fc1", "ffn_act", "drop3", "fc2",
]  # fmt: skip
CNN_SITES = ["cnn_act1", "cnn_act2", "cnn_act3", "cnn_act4"]


def test_layer_names_in_order():
    model = KerasNet()
    assert [name for name, _ in model.named_children()] == LAYER_NAMES


@pytest.mark.parametrize(
    "channels, size, classes",
    [(3, 32, 10), (1, 32, 10), (3, 16, 10), (3, 48, 10), (3, 32, 100), (1, 10, 2), (3, (20, 40), 10)],
)
def test_forward_shape(channels, size, classes):
    model = KerasNet(in_channels=channels, num_classes=classes, image_size=size)
    height, width = (size, size) if isinstance(size, int) else size
    out = model(torch.rand(2, channels, height, width))
    assert out.shape == (2, classes)


def test_flatten_size_follows_image_size():
    # conv (same) -> conv (-2) -> pool (/2), twice: 32 -> 30 -> 15 -> 13 -> 6.
    assert KerasNet(image_size=32).fc1.in_features == 64 * 6 * 6
    # 16 -> 14 -> 7 -> 5 -> 2.
    assert KerasNet(image_size=16).fc1.in_features == 64 * 2 * 2
    # 48 -> 46 -> 23 -> 21 -> 10.
    assert KerasNet(image_size=48).fc1.in_features == 64 * 10 * 10


def test_parameter_count_cifar():
    def conv(cin, cout):
        return cin * cout * 3 * 3 + cout

    def linear(fin, fout):
        return fin * fout + fout

    expected = conv(3, 32) + conv(32, 32) + conv(32, 64) + conv(64, 64) + linear(2304, 512) + linear(512, 10)
    model = KerasNet()
    assert expected == 1_250_858
    assert sum(p.numel() for p in model.parameters()) == expected


def test_classic_activations_by_name():
    model = KerasNet(cnn_activation="silu", ffn_activation="tanh")
    for site in CNN_SITES:
        assert type(getattr(model, site)) is nn.SiLU
    assert type(model.ffn_act) is nn.Tanh


def test_ffn_activation_defaults_to_cnn():
    model = KerasNet(cnn_activation="gelu")
    assert type(model.ffn_act) is nn.GELU
    assert model.model_config["ffn_activation"] == "gelu"


def test_every_site_own_instance():
    model = KerasNet(cnn_activation=lambda: AHAF(init="relu"))
    modules = [getattr(model, site) for site in [*CNN_SITES, "ffn_act"]]
    assert len({id(m) for m in modules}) == 5
    assert all(isinstance(m, AHAF) for m in modules)


def test_dropout_defaults_and_settings():
    model = KerasNet()
    assert model.drop3.p == 0.2
    assert model.drop1.p == model.drop2.p == 0.25
    assert isinstance(model.drop1, nn.Dropout2d)
    model = KerasNet(dropout=0.5, conv_dropout=0.0)
    assert model.drop3.p == 0.5
    assert model.drop1.p == 0.0


def test_model_config_classic():
    model = KerasNet(in_channels=1, num_classes=7, image_size=16, cnn_activation="relu", ffn_activation="tanh")
    assert model.model_config == {
        "name": "kerasnet",
        "in_channels": 1,
        "num_classes": 7,
        "image_size": 16,
        "cnn_activation": "relu",
        "ffn_activation": "tanh",
        "dropout": 0.2,
        "conv_dropout": 0.25,
    }


def test_model_config_is_a_copy():
    model = KerasNet()
    config = model.model_config
    config["num_classes"] = 99
    assert model.model_config["num_classes"] == 10


def test_build_model_round_trip_classic():
    model = KerasNet(in_channels=1, image_size=(24, 40), cnn_activation="sigmoid", ffn_activation="relu", dropout=0.3)
    config = json.loads(json.dumps(model.model_config))
    twin = build_model(config)
    assert twin.model_config == model.model_config
    assert [(n, p.shape) for n, p in twin.named_parameters()] == [(n, p.shape) for n, p in model.named_parameters()]
    twin.load_state_dict(model.state_dict())
    model.eval()
    twin.eval()
    x = torch.rand(3, 1, 24, 40)
    assert torch.equal(twin(x), model(x))


def test_build_model_round_trip_adaptive():
    model = KerasNet(
        cnn_activation=lambda: AHAF(init="relu"),
        ffn_activation=lambda: FNeuronActivation(init="tanh", num_functions=12),
    )
    config = json.loads(json.dumps(model.model_config))
    assert config["cnn_activation"]["family"] == "ahaf"
    assert config["ffn_activation"]["num_functions"] == 12
    twin = build_model(config)
    assert isinstance(twin.cnn_act3, AHAF)
    assert isinstance(twin.ffn_act, FNeuronActivation)
    assert twin.ffn_act.num_functions == 12
    twin.load_state_dict(model.state_dict())


def test_per_site_cnn_activations():
    model = KerasNet(cnn_activation=["relu", "silu", "tanh", "relu"], ffn_activation="sigmoid")
    assert model.model_config["cnn_activation"] == ["relu", "silu", "tanh", "relu"]
    twin = build_model(model.model_config)
    assert type(twin.cnn_act3) is nn.Tanh


def test_custom_module_recorded_not_rebuilt():
    model = KerasNet(cnn_activation=lambda: nn.LeakyReLU(0.2), ffn_activation="relu")
    recorded = model.model_config["cnn_activation"]
    assert recorded["module"] == "torch.nn.modules.activation.LeakyReLU"
    with pytest.raises(ValueError, match="custom activation"):
        build_model(model.model_config)


def test_default_leaky_relu_recorded_by_name():
    model = KerasNet(cnn_activation=lambda: nn.LeakyReLU(), ffn_activation="relu")
    assert model.model_config["cnn_activation"] == "leaky_relu"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"cnn_activation": "relux"}, "cnn_activation='relux' is not a known activation"),
        ({"ffn_activation": 3}, "ffn_activation=3 is invalid"),
        ({"cnn_activation": nn.ReLU()}, "module instance"),
        ({"cnn_activation": lambda: "relu"}, "not an nn.Module"),
        ({"cnn_activation": ["relu", "relu"], "ffn_activation": "relu"}, "has 2 entries"),
        ({"cnn_activation": ["relu"] * 4}, "ffn_activation=None"),
        ({"cnn_activation": {"family": "nope"}}, "not a valid adaptive activation config"),
        ({"in_channels": 0}, "in_channels=0 is invalid"),
        ({"num_classes": 2.5}, "num_classes=2.5 is invalid"),
        ({"image_size": 8}, "image_size=8 is too small"),
        ({"image_size": "32"}, "image_size='32' is invalid"),
        ({"dropout": 1.0}, "dropout=1.0 is invalid"),
        ({"conv_dropout": -0.1}, "conv_dropout=-0.1 is invalid"),
    ],
)
def test_invalid_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("[", r"\[")) as info:
        KerasNet(**kwargs)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "config, message",
    [
        ({"name": "resnet"}, "unknown model name 'resnet'"),
        ({"in_channels": 3}, "unknown model name None"),
        ({"name": "kerasnet", "width": 2}, "has no argument width"),
        ({"name": "kerasnet", "num_classes": -1}, "num_classes=-1 is invalid"),
        ("kerasnet", "must be a dict"),
    ],
)
def test_build_model_invalid(config, message):
    with pytest.raises(ValueError, match=message):
        build_model(config)


@pytest.mark.parametrize("shape", [(3, 32, 32), (1, 1, 3, 32, 32)])
def test_rejects_input_without_batch_of_images(shape):
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        KerasNet()(torch.rand(shape))


def test_channels_last_matches_contiguous_input():
    torch.manual_seed(0)
    model = KerasNet().eval()
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(x), model(x.contiguous(memory_format=torch.channels_last)))
