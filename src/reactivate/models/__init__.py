"""Reference networks with fixed activation site names, rebuilt from JSON configs."""

from .activation_spec import CLASSIC_ACTIVATIONS, ActivationSpec, describe_activation
from .kerasnet import KerasNet
from .registry import MODELS, build_model, register_model

__all__ = [
    "KerasNet",
    "build_model",
    "register_model",
    "MODELS",
    "CLASSIC_ACTIVATIONS",
    "ActivationSpec",
    "describe_activation",
]
