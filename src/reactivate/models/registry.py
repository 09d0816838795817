"""Registry of reference networks, rebuilt from their JSON model configs."""

from __future__ import annotations

import inspect
from typing import Any, Callable, Mapping

from torch import nn

from .kerasnet import KerasNet

__all__ = ["MODELS", "build_model", "register_model"]

# Model name -> class or factory; each built model has a ``model_config``
# dict whose "name" is the key and whose other entries are keyword arguments.
MODELS: dict[str, Callable[..., nn.Module]] = {"kerasnet": KerasNet}


def register_model(name: str, builder: Callable[..., nn.Module]) -> None:
    """Register a reference network so that :func:`build_model` can rebuild it.

    Args:
        name: the ``"name"`` entry of the network's ``model_config``.
        builder: a class or function that takes the other entries as
            keyword arguments.

    Raises:
        ValueError: ``name`` is already registered.
    """
    if name in MODELS:
        raise ValueError(f"a model named {name!r} is already registered; choose another name")
    MODELS[name] = builder


def build_model(config: Mapping[str, Any]) -> nn.Module:
    """Build a reference network from its ``model_config`` dict.

    Args:
        config: a dict such as ``{"name": "kerasnet", "in_channels": 1,
            "cnn_activation": "relu"}``; entries other than ``"name"`` are
            keyword arguments, and missing ones take their defaults.

    Returns:
        A new model with freshly initialised weights.

    Raises:
        ValueError: the name is unknown or an argument is unknown or invalid.

    Example::

        >>> model = KerasNet(in_channels=1)
        >>> twin = build_model(model.model_config)
        >>> twin.model_config == model.model_config
        True
    """
    if not isinstance(config, Mapping):
        raise ValueError(f"model config must be a dict with a 'name' entry, got {type(config).__name__}")
    kwargs = dict(config)
    name = kwargs.pop("name", None)
    if name not in MODELS:
        raise ValueError(f"unknown model name {name!r}; known models: {', '.join(sorted(MODELS))}")
    builder = MODELS[name]
    accepted = inspect.signature(builder).parameters
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise ValueError(
            f"model {name!r} has no argument {', '.join(unknown)}; accepted: {', '.join(accepted)}"
        )
    return builder(**kwargs)
