"""Activation arguments of the reference networks: names, factories, configs.

A reference network takes each of its activation choices as one of:

* a classic activation by its torch name (``"relu"``, ``"tanh"``...), built
  with the default arguments of the matching ``torch.nn`` module;
* a dict that ``AdaptiveActivation.config()`` returned, such as
  ``{"family": "ahaf", "init": "relu", ...}``;
* a zero-argument callable that returns a new ``nn.Module`` on every call,
  such as ``lambda: AHAF(init="relu")``.

:func:`describe_activation` turns a built module back into the first or
second form, so that a model config stays JSON and rebuilds the same network.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Union

from torch import nn

from ..activations import AdaptiveActivation, activation_from_config

__all__ = [
    "ActivationSpec",
    "CLASSIC_ACTIVATIONS",
    "activation_factory",
    "describe_activation",
]

ActivationSpec = Union[str, Mapping[str, Any], Callable[[], nn.Module]]

# Torch names of the classic activations a reference network accepts by name.
CLASSIC_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "relu6": nn.ReLU6,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "selu": nn.SELU,
    "celu": nn.CELU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "mish": nn.Mish,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "hardtanh": nn.Hardtanh,
    "hardsigmoid": nn.Hardsigmoid,
    "hardswish": nn.Hardswish,
    "softplus": nn.Softplus,
    "identity": nn.Identity,
}

# Alternative spellings: the lower-cased torch.nn class names.
_ALIASES = {cls.__name__.lower(): name for name, cls in CLASSIC_ACTIVATIONS.items()}


def _classic_factory(name: str, argument: str) -> Callable[[], nn.Module]:
    key = name.lower()
    key = _ALIASES.get(key, key)
    if key not in CLASSIC_ACTIVATIONS:
        known = ", ".join(CLASSIC_ACTIVATIONS)
        raise ValueError(f"{argument}={name!r} is not a known activation; use one of: {known}")
    return CLASSIC_ACTIVATIONS[key]


def _adaptive_factory(config: Mapping[str, Any], argument: str) -> Callable[[], nn.Module]:
    config = dict(config)
    if "module" in config and "family" not in config:
        raise ValueError(
            f"{argument} records the custom activation {config['module']}, which a config "
            "cannot rebuild; construct the model in code with a factory for that module"
        )
    try:
        activation_from_config(config)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{argument}={config!r} is not a valid adaptive activation config: {error}") from None
    return lambda: activation_from_config(config)


def _checked_callable(factory: Callable[[], nn.Module], argument: str) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        module = factory()
        if not isinstance(module, nn.Module):
            raise ValueError(
                f"{argument} returned {type(module).__name__}, not an nn.Module; "
                "pass a zero-argument callable that returns a new module, such as "
                "lambda: AHAF(init='relu')"
            )
        return module

    return build


def activation_factory(spec: ActivationSpec, argument: str) -> Callable[[], nn.Module]:
    """Turn an activation argument into a zero-argument module factory.

    Args:
        spec: a classic torch name, an adaptive activation config dict, or a
            zero-argument callable returning an ``nn.Module``.
        argument: the argument's name, quoted in error messages.

    Returns:
        A callable that builds a new activation module on every call.

    Raises:
        ValueError: the name is unknown, the config invalid, or ``spec`` of
            another type.
    """
    if isinstance(spec, str):
        return _classic_factory(spec, argument)
    if isinstance(spec, Mapping):
        return _adaptive_factory(spec, argument)
    if isinstance(spec, nn.Module):
        raise ValueError(
            f"{argument} is a module instance ({type(spec).__name__}); every activation "
            "site needs its own module, so pass a name or a factory such as "
            f"lambda: {type(spec).__name__}()"
        )
    if callable(spec):
        return _checked_callable(spec, argument)
    raise ValueError(
        f"{argument}={spec!r} is invalid; give a torch activation name such as 'relu', "
        "an adaptive activation config dict, or a zero-argument callable returning a module"
    )


def describe_activation(module: nn.Module) -> str | dict[str, Any]:
    """Describe a built activation module in JSON form.

    Returns:
        The torch name for a classic module built with its default
        arguments, the ``config()`` dict for an adaptive activation, and
        otherwise ``{"module": "<qualified class name>", "repr": "..."}``,
        which records the module but cannot rebuild it.
    """
    if isinstance(module, AdaptiveActivation):
        return module.config()
    for name, cls in CLASSIC_ACTIVATIONS.items():
        # A classic module counts as its plain name only when its arguments
        # are the defaults, so LeakyReLU(0.2) is not recorded as "leaky_relu".
        if type(module) is cls and module.extra_repr() == cls().extra_repr():
            return name
    cls = type(module)
    return {"module": f"{cls.__module__}.{cls.__qualname__}", "repr": repr(module)}
