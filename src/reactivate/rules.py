"""Registry that maps classic activations to adaptive families.

Two tables decide what :func:`reactivate.replace_activations` does:

* **recognisers** turn an original activation (a ``torch.nn`` module class, a
  functional such as ``torch.nn.functional.relu``, or a tensor method such as
  ``Tensor.relu_``) into an :class:`OriginalActivation`: its torch name, the
  settings that change the function (negative slope, GELU ``approximate``,
  Hardtanh bounds) and whether it works in place;
* **presets** map a torch name to a *factory* that receives the
  :class:`OriginalActivation` (including the original module) and returns the
  configuration of the adaptive module that starts out reproducing it.

Built-in presets:

* ``"paper"``: ReLU and SiLU become AHAF, Tanh and Sigmoid become an F-neuron
  with 18 membership functions on [-4, 4], as in Bodyanskiy and Kostiuk,
  "Using Adaptive Activation Functions in Pre-Trained Artificial Neural Network
  Models" (ICST 2023);
* ``"exact"``: every activation that a family reproduces exactly or to
  float rounding: ReLU and SiLU as AHAF (ReLU with gamma 1e9, max abs error
  2.8e-10), Tanh and Sigmoid as LEAF, ReLU6, Hardtanh and Hardsigmoid as an
  F-neuron whose grid puts every kink on a centre;
* ``"approximate"``: ``"exact"`` plus GELU as AHAF with gamma 1.702 (max abs
  error 0.0203).

Users extend both tables with :func:`register_activation`,
:func:`register_family` and :func:`register_preset`, or pass a dict as the
preset, such as ``{"relu": "leaf", "gelu": my_factory}``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence, Union

import torch
import torch.nn.functional as F
from torch import nn

from .activations import FAMILIES, AdaptiveActivation
from .errors import ReplacementError

__all__ = [
    "OriginalActivation",
    "SkipSite",
    "Preset",
    "register_activation",
    "register_functional",
    "register_family",
    "register_preset",
    "get_preset",
    "known_activations",
    "known_presets",
    "recognise_module",
    "recognise_call",
    "build_activation",
    "family_class",
    "function_key",
    "stand_in_module",
    "activation_names",
]


@dataclass
class OriginalActivation:
    """A classic activation found in a model, in normalised form.

    Attributes:
        name: torch name of the function, such as ``"relu"`` or ``"gelu"``.
        kwargs: settings that change the function, such as
            ``{"negative_slope": 0.1}`` or ``{"approximate": "tanh"}``.
        inplace: True when the original overwrites its input.
        source: how the model applies it: a class name such as
            ``"torch.nn.ReLU"``, a function such as
            ``"torch.nn.functional.relu"``, or a method such as
            ``"Tensor.relu_"``.
        module: the original module; for a functional call, an equivalent
            ``torch.nn`` module built from the call's arguments.
        observed_range: ``(min, max)`` of the inputs seen during calibration,
            or None when no calibration ran.
    """

    name: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    inplace: bool = False
    source: str = ""
    module: nn.Module | None = None
    observed_range: tuple[float, float] | None = None

    def describe(self) -> str:
        """Return a short readable form, such as ``"torch.nn.ReLU(inplace=True)"``."""
        args = [f"{k}={v!r}" for k, v in self.kwargs.items()]
        if self.inplace:
            args.append("inplace=True")
        return f"{self.source}({', '.join(args)})"

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-serialisable fields (everything except the module)."""
        return {"name": self.name, "kwargs": dict(self.kwargs), "inplace": self.inplace, "source": self.source}


class SkipSite(Exception):
    """Raised by a preset factory to leave one site unchanged, with a reason."""


# A factory receives the original and returns the adaptive module's
# configuration without granularity and shape, such as
# {"family": "ahaf", "init": "relu", "gamma": 1e9}, or None to leave it alone.
Factory = Callable[[OriginalActivation], Union[dict, None]]


@dataclass(frozen=True)
class Preset:
    """A named mapping from torch activation names to family factories."""

    name: str
    factories: Mapping[str, Factory]
    description: str = ""

    def factory_for(self, name: str) -> Factory | None:
        return self.factories.get(name)


# ---------------------------------------------------------------------------
# Recognisers: original activation -> (name, kwargs, inplace)
# ---------------------------------------------------------------------------

ModuleExtractor = Callable[[nn.Module], dict]

# Exact class -> (torch name, extractor of the function's settings). Exact
# class matching keeps a subclass that changes forward from being mistaken
# for its base class; register such subclasses explicitly.
_MODULE_RULES: dict[type, tuple[str, ModuleExtractor]] = {}

# Function object -> (torch name, parameter names after the input, defaults,
# whether the function always works in place).
_FUNCTION_RULES: dict[Callable, tuple[str, tuple[str, ...], dict[str, Any], bool]] = {}
_FUNCTION_KEYS: dict[Callable, str] = {}

# Tensor method name -> (torch name, works in place)
_METHOD_RULES: dict[str, tuple[str, bool]] = {}

# torch name -> torch.nn class used as a stand-in for functional calls.
_STAND_INS: dict[str, Callable[[dict, bool], nn.Module]] = {}


def register_activation(
    cls: type[nn.Module],
    name: str,
    extract: ModuleExtractor | None = None,
) -> None:
    """Teach the replacement engine to recognise an activation module class.

    Args:
        cls: the module class, matched exactly (subclasses are not matched).
        name: torch name of the function it computes, such as ``"gelu"``;
            a preset decides which family replaces it.
        extract: callable taking the module and returning the settings that
            change the function, such as ``lambda m: {"approximate": "tanh"}``,
            plus ``"inplace"`` when it works in place. Default: no settings.

    Returns:
        None.

    Example:
        >>> class MyGELU(nn.Module):
        ...     def forward(self, x):
        ...         return torch.nn.functional.gelu(x)
        >>> register_activation(MyGELU, "gelu")
    """
    if not isinstance(cls, type) or not issubclass(cls, nn.Module):
        raise ReplacementError(f"register_activation needs an nn.Module subclass, got {cls!r}")
    if not isinstance(name, str) or not name:
        raise ReplacementError(f"register_activation needs a torch name such as 'relu', got {name!r}")
    _MODULE_RULES[cls] = (name, extract or (lambda module: {}))


def register_functional(
    function: Callable,
    name: str,
    params: Sequence[str] = (),
    defaults: Mapping[str, Any] | None = None,
    *,
    inplace: bool = False,
    key: str | None = None,
) -> None:
    """Teach the fx rewriter to recognise a functional activation.

    Args:
        function: the function object called in ``forward``.
        name: torch name of the function it computes.
        params: names of the positional parameters after the input, such
            as ``("negative_slope", "inplace")``.
        defaults: default values of those parameters.
        inplace: True when the function always overwrites its input.
        key: stable dotted name used in replacement specs. Default:
            ``module.qualname`` of the function.

    Returns:
        None.

    Example:
        >>> register_functional(torch.nn.functional.celu, "celu", ("alpha", "inplace"),
        ...                     {"alpha": 1.0, "inplace": False})
    """
    if not callable(function):
        raise ReplacementError(f"register_functional needs a function, got {function!r}")
    _FUNCTION_RULES[function] = (name, tuple(params), dict(defaults or {}), inplace)
    _FUNCTION_KEYS[function] = key or f"{getattr(function, '__module__', '')}.{getattr(function, '__qualname__', repr(function))}"


def _attrs(*names: str) -> ModuleExtractor:
    return lambda module: {n: getattr(module, n) for n in names if hasattr(module, n)}


def _register_builtins() -> None:
    with_inplace = _attrs("inplace")
    register_activation(nn.ReLU, "relu", with_inplace)
    register_activation(nn.ReLU6, "relu6", with_inplace)
    register_activation(nn.SiLU, "silu", with_inplace)
    register_activation(nn.Tanh, "tanh")
    register_activation(nn.Sigmoid, "sigmoid")
    register_activation(nn.GELU, "gelu", _attrs("approximate"))
    register_activation(nn.Hardtanh, "hardtanh", _attrs("min_val", "max_val", "inplace"))
    register_activation(nn.Hardsigmoid, "hardsigmoid", with_inplace)
    register_activation(nn.Hardswish, "hardswish", with_inplace)
    register_activation(nn.LeakyReLU, "leaky_relu", _attrs("negative_slope", "inplace"))
    register_activation(nn.ELU, "elu", _attrs("alpha", "inplace"))
    register_activation(nn.CELU, "celu", _attrs("alpha", "inplace"))
    register_activation(nn.SELU, "selu", with_inplace)
    register_activation(nn.Mish, "mish", with_inplace)
    register_activation(nn.Softplus, "softplus", _attrs("beta", "threshold"))
    register_activation(nn.Softsign, "softsign")
    register_activation(nn.LogSigmoid, "logsigmoid")

    ip = {"inplace": False}
    register_functional(torch.relu, "relu", key="torch.relu")
    register_functional(torch.relu_, "relu", inplace=True, key="torch.relu_")
    register_functional(F.relu, "relu", ("inplace",), ip, key="torch.nn.functional.relu")
    register_functional(F.relu_, "relu", inplace=True, key="torch.nn.functional.relu_")
    register_functional(F.relu6, "relu6", ("inplace",), ip, key="torch.nn.functional.relu6")
    register_functional(F.silu, "silu", ("inplace",), ip, key="torch.nn.functional.silu")
    register_functional(torch.tanh, "tanh", key="torch.tanh")
    register_functional(torch.tanh_, "tanh", inplace=True, key="torch.tanh_")
    register_functional(F.tanh, "tanh", key="torch.nn.functional.tanh")
    register_functional(torch.sigmoid, "sigmoid", key="torch.sigmoid")
    register_functional(torch.sigmoid_, "sigmoid", inplace=True, key="torch.sigmoid_")
    register_functional(F.sigmoid, "sigmoid", key="torch.nn.functional.sigmoid")
    register_functional(F.gelu, "gelu", ("approximate",), {"approximate": "none"}, key="torch.nn.functional.gelu")
    register_functional(
        F.hardtanh, "hardtanh", ("min_val", "max_val", "inplace"),
        {"min_val": -1.0, "max_val": 1.0, "inplace": False}, key="torch.nn.functional.hardtanh",
    )
    register_functional(F.hardsigmoid, "hardsigmoid", ("inplace",), ip, key="torch.nn.functional.hardsigmoid")
    register_functional(F.hardswish, "hardswish", ("inplace",), ip, key="torch.nn.functional.hardswish")
    register_functional(
        F.leaky_relu, "leaky_relu", ("negative_slope", "inplace"),
        {"negative_slope": 0.01, "inplace": False}, key="torch.nn.functional.leaky_relu",
    )
    register_functional(F.elu, "elu", ("alpha", "inplace"), {"alpha": 1.0, "inplace": False},
                        key="torch.nn.functional.elu")
    register_functional(F.mish, "mish", ("inplace",), ip, key="torch.nn.functional.mish")

    for method, (name, inplace) in {
        "relu": ("relu", False), "relu_": ("relu", True),
        "sigmoid": ("sigmoid", False), "sigmoid_": ("sigmoid", True),
        "tanh": ("tanh", False), "tanh_": ("tanh", True),
    }.items():
        _METHOD_RULES[method] = (name, inplace)

    _STAND_INS.update({
        "relu": lambda kw, ip: nn.ReLU(inplace=ip),
        "relu6": lambda kw, ip: nn.ReLU6(inplace=ip),
        "silu": lambda kw, ip: nn.SiLU(inplace=ip),
        "tanh": lambda kw, ip: nn.Tanh(),
        "sigmoid": lambda kw, ip: nn.Sigmoid(),
        "gelu": lambda kw, ip: nn.GELU(**kw),
        "hardtanh": lambda kw, ip: nn.Hardtanh(**kw, inplace=ip),
        "hardsigmoid": lambda kw, ip: nn.Hardsigmoid(inplace=ip),
        "hardswish": lambda kw, ip: nn.Hardswish(inplace=ip),
        "leaky_relu": lambda kw, ip: nn.LeakyReLU(**kw, inplace=ip),
        "elu": lambda kw, ip: nn.ELU(**kw, inplace=ip),
        "mish": lambda kw, ip: nn.Mish(inplace=ip),
    })


def known_activations() -> list[str]:
    """Return the recognised module classes, functions and methods, as readable names.

    Returns:
        Sorted list such as ``["Tensor.relu", ..., "torch.nn.ReLU", ...]``.

    Example:
        >>> "torch.nn.functional.relu" in known_activations()
        True
    """
    names = [f"{c.__module__.replace('torch.nn.modules.activation', 'torch.nn')}.{c.__qualname__}" for c in _MODULE_RULES]
    names += list(_FUNCTION_KEYS.values())
    names += [f"Tensor.{m}" for m in _METHOD_RULES]
    return sorted(set(names))


def recognise_module(module: nn.Module) -> OriginalActivation | None:
    """Describe ``module`` as an :class:`OriginalActivation`, or None when it is not one.

    Args:
        module: any module; only classes registered with
            :func:`register_activation` are recognised.

    Returns:
        The original activation, or None.

    Example:
        >>> recognise_module(nn.LeakyReLU(0.2)).kwargs
        {'negative_slope': 0.2}
    """
    if isinstance(module, AdaptiveActivation):
        return None
    rule = _MODULE_RULES.get(type(module))
    if rule is None:
        return None
    name, extract = rule
    kwargs = dict(extract(module))
    inplace = bool(kwargs.pop("inplace", False))
    cls = type(module)
    source = f"{cls.__module__}.{cls.__qualname__}".replace("torch.nn.modules.activation", "torch.nn")
    return OriginalActivation(name, kwargs, inplace, source, module)


def function_key(target: Any, method: bool = False) -> str | None:
    """Return the stable name of a recognised function or tensor method, or None.

    Args:
        target: a function object, or a method name when ``method``.
        method: True for a tensor method name. Default: False.

    Returns:
        A name such as ``"torch.nn.functional.relu"`` or ``"Tensor.relu_"``.

    Example:
        >>> function_key(torch.sigmoid)
        'torch.sigmoid'
    """
    if method:
        return f"Tensor.{target}" if target in _METHOD_RULES else None
    try:
        return _FUNCTION_KEYS.get(target)
    except TypeError:  # unhashable targets are never activations
        return None


def recognise_call(target: Any, args: Sequence[Any], kwargs: Mapping[str, Any], method: bool = False):
    """Describe a traced call as an :class:`OriginalActivation`.

    Args:
        target: the function object, or the method name when ``method``.
        args: the call's positional arguments, the input first.
        kwargs: the call's keyword arguments.
        method: True for a tensor method call such as ``x.relu_()``.

    Returns:
        ``(original, None)`` for a recognised call with constant settings,
        ``(None, reason)`` for a recognised call that cannot be replaced, and
        ``(None, None)`` for anything else.

    Example:
        >>> recognise_call(torch.nn.functional.relu, ("x",), {"inplace": True})[0].inplace
        True
    """
    key = function_key(target, method)
    if key is None:
        return None, None
    if method:
        name, inplace = _METHOD_RULES[target]
        if len(args) != 1 or kwargs:
            return None, f"{key} is called with extra arguments"
        settings: dict[str, Any] = {}
    else:
        name, params, defaults, inplace = _FUNCTION_RULES[target]
        settings = dict(defaults)
        extra = list(args[1:])
        if len(extra) > len(params):
            return None, f"{key} is called with {len(args)} positional arguments"
        settings.update(zip(params, extra))
        for k, v in kwargs.items():
            if k == "input":
                continue
            if k not in params:
                return None, f"{key} is called with the unknown keyword {k!r}"
            settings[k] = v
        if "input" in kwargs and args:
            return None, f"{key} is called with the input twice"
    for k, v in settings.items():
        if isinstance(v, torch.fx.Node) or not isinstance(v, (int, float, str, bool, type(None))):
            return None, f"{key} gets its {k!r} argument at run time, so it cannot be fixed in a module"
    inplace = bool(settings.pop("inplace", False)) or inplace
    stand_in = _STAND_INS.get(name)
    module = stand_in(settings, inplace) if stand_in is not None else None
    return OriginalActivation(name, settings, inplace, key, module), None


def stand_in_module(name: str, kwargs: Mapping[str, Any], inplace: bool = False) -> nn.Module | None:
    """Build the ``torch.nn`` module that computes the torch function ``name``, or None.

    Args:
        name: torch name such as ``"leaky_relu"``.
        kwargs: the function's settings.
        inplace: whether the module works in place. Default: False.

    Returns:
        The module, or None when no ``torch.nn`` class matches.

    Example:
        >>> stand_in_module("leaky_relu", {"negative_slope": 0.2})
        LeakyReLU(negative_slope=0.2)
    """
    maker = _STAND_INS.get(name)
    return maker(dict(kwargs), inplace) if maker is not None else None


# ---------------------------------------------------------------------------
# Families and presets
# ---------------------------------------------------------------------------

_FAMILIES: dict[str, type[AdaptiveActivation]] = {}


def register_family(name: str, cls: type[AdaptiveActivation]) -> None:
    """Register an adaptive family so presets, specs and adapters can build it.

    Args:
        name: the family name stored in configurations, such as ``"ahaf"``.
        cls: an :class:`~reactivate.AdaptiveActivation` subclass whose
            constructor accepts the configuration's keys (``init``,
            ``granularity``, ``shape``, family arguments, ``device``, ``dtype``).

    Returns:
        None.

    Example:
        >>> from reactivate import AHAF
        >>> class Scaled(AHAF):
        ...     family = "scaled_ahaf"
        >>> register_family("scaled_ahaf", Scaled)
    """
    if not isinstance(cls, type) or not issubclass(cls, AdaptiveActivation):
        raise ReplacementError(f"register_family needs an AdaptiveActivation subclass, got {cls!r}")
    _FAMILIES[name] = cls


def family_class(name: str) -> type[AdaptiveActivation]:
    """Return the class of family ``name``; an unknown name lists the known ones.

    Args:
        name: a family name such as ``"ahaf"``, ``"leaf"`` or ``"fneuron"``.

    Returns:
        The :class:`~reactivate.AdaptiveActivation` subclass.

    Example:
        >>> family_class("leaf").__name__
        'LEAF'
    """
    cls = _FAMILIES.get(name) or FAMILIES.get(name)
    if cls is None:
        known = ", ".join(sorted(set(_FAMILIES) | set(FAMILIES)))
        raise ReplacementError(f"unknown adaptive family {name!r}; known families: {known}")
    return cls


def build_activation(
    config: Mapping[str, Any],
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> AdaptiveActivation:
    """Build an adaptive activation from its configuration dict.

    Args:
        config: the dict that :meth:`AdaptiveActivation.config` returns.
        device: device of the new parameters. Default: CPU.
        dtype: floating dtype of the new parameters. Default: float32.

    Returns:
        The new module, with the start parameters of its configuration.

    Example:
        >>> build_activation({"family": "ahaf", "init": "silu", "granularity": "layer", "shape": None})
        AHAF(init='silu', granularity='layer')
    """
    config = dict(config)
    cls = family_class(config.pop("family", None))
    if config.get("interval") is not None:
        config["interval"] = tuple(config["interval"])
    if config.get("shape") is None:
        config.pop("shape", None)
    try:
        return cls(**config, device=device, dtype=dtype)
    except TypeError as exc:
        raise ReplacementError(f"cannot build {cls.__name__} from configuration {config!r}: {exc}") from None


def _ahaf_relu(original: OriginalActivation) -> dict:
    return {"family": "ahaf", "init": "relu", "gamma": 1e9}


def _ahaf_silu(original: OriginalActivation) -> dict:
    return {"family": "ahaf", "init": "silu"}


def _ahaf_gelu(original: OriginalActivation) -> dict:
    if original.kwargs.get("approximate", "none") not in ("none", "tanh"):
        raise SkipSite(f"GELU approximate={original.kwargs.get('approximate')!r} is not a torch setting")
    return {"family": "ahaf", "init": "gelu"}


def _leaf(init: str) -> Factory:
    def factory(original: OriginalActivation) -> dict:
        return {"family": "leaf", "init": init}

    factory.__name__ = f"leaf_{init}"
    return factory


def _calibrated_interval(original: OriginalActivation, default: tuple[float, float]) -> tuple[float, float]:
    """Return the observed input range rounded outward to 0.25, or ``default``."""
    if original.observed_range is None:
        return default
    low, high = original.observed_range
    low = math.floor(low * 4) / 4
    high = math.ceil(high * 4) / 4
    if high - low < 0.5:
        middle = (low + high) / 2
        low, high = middle - 0.25, middle + 0.25
    return (low, high)


def _paper_fneuron(original: OriginalActivation) -> dict:
    low, high = _calibrated_interval(original, (-4.0, 4.0))
    return {"family": "fneuron", "init": original.name, "interval": [low, high], "num_functions": 18}


def _kink_grid(low_kink: float, high_kink: float) -> tuple[list[float], int]:
    """Return an interval and function count that put both kinks on centres.

    The grid has step ``(high - low) / 8`` and reaches two steps beyond each
    kink, so the adaptive function has room to move on both flat parts.
    """
    width = high_kink - low_kink
    return [low_kink - width / 4, high_kink + width / 4], 13


def _fneuron_hardtanh(original: OriginalActivation) -> dict:
    low = float(original.kwargs.get("min_val", -1.0))
    high = float(original.kwargs.get("max_val", 1.0))
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise SkipSite(f"Hardtanh bounds ({low}, {high}) do not form a finite interval")
    interval, m = _kink_grid(low, high)
    return {"family": "fneuron", "init": "hardtanh", "interval": interval, "num_functions": m,
            "min_val": low, "max_val": high}


def _fneuron_relu6(original: OriginalActivation) -> dict:
    interval, m = _kink_grid(0.0, 6.0)
    return {"family": "fneuron", "init": "relu6", "interval": interval, "num_functions": m}


def _fneuron_hardsigmoid(original: OriginalActivation) -> dict:
    interval, m = _kink_grid(-3.0, 3.0)
    return {"family": "fneuron", "init": "hardsigmoid", "interval": interval, "num_functions": m}


_PRESETS: dict[str, Preset] = {}


def register_preset(name: str, factories: Mapping[str, Factory | str | None], description: str = "") -> Preset:
    """Register a named preset for :func:`reactivate.replace_activations`.

    Args:
        name: the preset name.
        factories: torch activation name -> factory, family name or None.
            A factory takes an :class:`OriginalActivation` and returns the
            adaptive configuration (a dict with ``"family"``, ``"init"`` and
            family arguments), returns None or raises :class:`SkipSite` to
            leave the site alone. A family name uses that family started
            from the same function (``"leaf"`` for ``"tanh"`` means
            ``{"family": "leaf", "init": "tanh"}``).
        description: one line shown in reports.

    Returns:
        The registered :class:`Preset`.

    Example:
        >>> _ = register_preset("leaf-everywhere", {"relu": "leaf", "silu": "leaf", "tanh": "leaf"})
    """
    preset = _make_preset(name, factories, description)
    _PRESETS[name] = preset
    return preset


def _family_factory(family: str) -> Factory:
    family_class(family)  # fail early on an unknown family

    def factory(original: OriginalActivation) -> dict:
        return {"family": family, "init": original.name, **original.kwargs}

    factory.__name__ = f"{family}_factory"
    return factory


def activation_names() -> list[str]:
    """Return the torch names of every recognised activation, such as ``"relu"``.

    Returns:
        Sorted list of names that preset keys may use.

    Example:
        >>> "leaky_relu" in activation_names()
        True
    """
    names = {name for name, _ in _MODULE_RULES.values()}
    names |= {rule[0] for rule in _FUNCTION_RULES.values()}
    names |= {name for name, _ in _METHOD_RULES.values()}
    return sorted(names)


def _make_preset(name: str, factories: Mapping[str, Factory | str | None], description: str) -> Preset:
    resolved: dict[str, Factory] = {}
    known = activation_names()
    for act, value in factories.items():
        if act not in known:
            raise ReplacementError(
                f"preset {name!r} maps unknown activation {act!r}; known activations: {', '.join(known)} "
                "(register others with register_activation)")
        if value is None:
            continue
        if isinstance(value, str):
            resolved[act] = _family_factory(value)
        elif callable(value):
            resolved[act] = value
        else:
            raise ReplacementError(
                f"preset {name!r} maps {act!r} to {value!r}; give a family name, a factory or None"
            )
    return Preset(name, resolved, description)


def known_presets() -> list[str]:
    """Return the names of the registered presets.

    Returns:
        Sorted list of names.

    Example:
        >>> [name for name in known_presets() if name in ("exact", "paper")]
        ['exact', 'paper']
    """
    return sorted(_PRESETS)


def get_preset(preset: str | Preset | Mapping[str, Factory | str | None]) -> Preset:
    """Resolve a preset name, :class:`Preset` or dict into a :class:`Preset`.

    Args:
        preset: a registered name (``"paper"``, ``"exact"``,
            ``"approximate"``), a :class:`Preset`, or a dict as accepted by
            :func:`register_preset`.

    Returns:
        The preset.

    Example:
        >>> sorted(get_preset("paper").factories)
        ['relu', 'sigmoid', 'silu', 'tanh']
    """
    if isinstance(preset, Preset):
        return preset
    if isinstance(preset, str):
        if preset not in _PRESETS:
            raise ReplacementError(f"unknown preset {preset!r}; known presets: {', '.join(known_presets())}")
        return _PRESETS[preset]
    if isinstance(preset, Mapping):
        return _make_preset("custom", preset, "user mapping")
    raise ReplacementError(
        f"preset={preset!r} is invalid; give a preset name ({', '.join(known_presets())}) "
        "or a dict from activation names to families"
    )


_register_builtins()

_EXACT = {
    "relu": _ahaf_relu,
    "silu": _ahaf_silu,
    "tanh": _leaf("tanh"),
    "sigmoid": _leaf("sigmoid"),
    "relu6": _fneuron_relu6,
    "hardtanh": _fneuron_hardtanh,
    "hardsigmoid": _fneuron_hardsigmoid,
}
register_preset(
    "paper",
    {"relu": _ahaf_relu, "silu": _ahaf_silu, "tanh": _paper_fneuron, "sigmoid": _paper_fneuron},
    "ReLU, SiLU -> AHAF; Tanh, Sigmoid -> F-neuron (18 functions on [-4, 4])",
)
register_preset("exact", _EXACT, "every activation that a family reproduces exactly or to float rounding")
register_preset("approximate", {**_EXACT, "gelu": _ahaf_gelu}, "exact, plus GELU -> AHAF (max abs error 0.0203)")
