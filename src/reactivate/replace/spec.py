"""The JSON description of a replacement, and its reapplication.

:func:`replacement_spec` describes every replacement round done on a model
(where each site sits, the original activation and the adaptive module's
configuration). :func:`reapply_replacement` redoes it on an unmodified
copy of the base model, so that an adapted model can be rebuilt from the
base architecture plus this description before its weights are loaded.
"""

from __future__ import annotations

import json
from typing import Any, Mapping

from torch import fx, nn

from ..activations import AdaptiveActivation
from ..errors import ReplacementError
from ..rules import build_activation, function_key, recognise_call, recognise_module
from .inplace import _make_inplace
from .install import _STATE_ATTR, _install
from .sites import _Analysis, _device_dtype, _resolve, _Site
from .tracing import _Traced

__all__ = ["SPEC_FORMAT", "replacement_spec", "reapply_replacement"]

SPEC_FORMAT = "reactivate-replacement"
_SPEC_FORMAT_VERSION = 1


def _site_spec(site: _Site, module: AdaptiveActivation) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "kind": site.kind,
        "name": site.name,
        "original": site.original.to_dict(),
        "inplace": site.inplace,
        "config": module.config(),
    }
    if site.kind == "module":
        spec["slots"] = list(site.slots)
    else:
        spec.update(parent=site.parent_path, attr=site.attr, target=site.target, occurrence=site.occurrence)
    return spec


def replacement_spec(model: nn.Module) -> dict[str, Any]:
    """Describe the replacement done on ``model`` as a JSON-serialisable dict.

    The description holds, per replaced site, where it sits (module slot, or
    parent module plus the call it replaced), how it was reached, the
    original activation and the adaptive module's configuration, plus the
    library version. :func:`reapply_replacement` redoes it on an unmodified
    copy of the base model.

    Args:
        model: a model changed by :func:`replace_activations` or
            :func:`reapply_replacement`.

    Returns:
        ``{"format": "reactivate-replacement", "format_version": 1,
        "library_version": ..., "rounds": [{"sites": [...]}, ...]}``, one
        round per replacement call.

    Example:
        >>> model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Tanh())
        >>> _ = replace_activations(model, "paper")
        >>> replacement_spec(model)["rounds"][0]["sites"][0]["config"]["family"]
        'fneuron'
    """
    from .. import __version__

    rounds = model.__dict__.get(_STATE_ATTR)
    if not rounds:
        raise ReplacementError("the model has no replaced activations; call replace_activations first")
    return {
        "format": SPEC_FORMAT,
        "format_version": _SPEC_FORMAT_VERSION,
        "library_version": __version__,
        "rounds": [{"sites": [json.loads(json.dumps(s)) for s in r.sites]} for r in rounds],
    }


def reapply_replacement(model: nn.Module, spec: Mapping[str, Any]) -> int:
    """Redo a replacement described by :func:`replacement_spec` on an unmodified model.

    Every site is located and checked (the original activation there must
    match the description) before the model changes. The adaptive modules
    get their start parameters; load trained ones afterwards with
    ``model.load_state_dict`` or :func:`reactivate.load_adapter`.

    Args:
        model: an unmodified instance of the base architecture.
        spec: the dict returned by :func:`replacement_spec`.

    Returns:
        The number of adaptive modules created.

    Raises:
        ReplacementError: when the spec is malformed, the model already has
            replaced activations, or a site is missing or contains another
            activation. The model is left unchanged for the failing round.

    Example:
        >>> fresh = build_same_architecture()  # doctest: +SKIP
        >>> reapply_replacement(fresh, replacement_spec(model))  # doctest: +SKIP
    """
    if not isinstance(spec, Mapping) or spec.get("format") != SPEC_FORMAT:
        raise ReplacementError(f"not a replacement spec: expected a dict with format={SPEC_FORMAT!r}")
    if spec.get("format_version") != _SPEC_FORMAT_VERSION:
        raise ReplacementError(
            f"replacement spec format_version {spec.get('format_version')!r} is not supported "
            f"(this library reads version {_SPEC_FORMAT_VERSION})")
    if model.__dict__.get(_STATE_ATTR):
        raise ReplacementError("the model already has replaced activations; reapply the spec to an unmodified copy")
    count = 0
    for round_spec in spec.get("rounds", []):
        count += _reapply_round(model, round_spec.get("sites", []))
    return count


def _reapply_round(model: nn.Module, site_specs: list[Mapping[str, Any]]) -> int:
    analysis = _Analysis(model)
    sites: list[_Site] = []
    modules: list[AdaptiveActivation] = []
    for entry in site_specs:
        try:
            kind, name, expected_name, config = entry["kind"], entry["name"], entry["original"]["name"], entry["config"]
        except (KeyError, TypeError):
            raise ReplacementError(f"malformed site in replacement spec: {entry!r}") from None
        if kind == "module":
            slots = list(entry.get("slots") or [name])
            for slot in slots:
                parent, attr = _resolve(model, slot)
                found = recognise_module(parent._modules[attr])
                if found is None or found.name != expected_name:
                    raise ReplacementError(
                        f"site {slot!r} contains {type(parent._modules[attr]).__name__}, but the spec "
                        f"expects {expected_name}; reapply the spec to the base architecture it was made from")
            site = _Site("module", name, found, slots=slots)
            device, dtype = _device_dtype(model, slots[0])
        elif kind in ("call", "function"):
            parent_path, target, occurrence = entry["parent"], entry["target"], int(entry["occurrence"])
            if parent_path not in analysis.modules:
                raise ReplacementError(f"the model has no submodule {parent_path!r} for site {name!r}")
            try:
                traced = analysis.trace(parent_path)
            except Exception as exc:
                raise ReplacementError(f"cannot trace {parent_path!r} for site {name!r}: {exc}") from None
            node = _find_node(traced, kind, target, occurrence)
            if node is None:
                raise ReplacementError(
                    f"{parent_path or '<model>'} has no call number {occurrence} of {target!r} for site {name!r}")
            parent = analysis.modules[parent_path]
            if kind == "call":
                found = recognise_module(parent.get_submodule(target))
            else:
                found, _ = recognise_call(node.target, node.args, node.kwargs, node.op == "call_method")
            if found is None or found.name != expected_name:
                raise ReplacementError(f"site {name!r} calls {target!r}, but the spec expects {expected_name}")
            if hasattr(parent, entry["attr"]):
                raise ReplacementError(f"{parent_path or '<model>'} already has an attribute {entry['attr']!r}")
            site = _Site(kind, name, found, parent_path=parent_path, attr=entry["attr"], node=node,
                         target=target, occurrence=occurrence)
            device, dtype = _device_dtype(model, parent_path)
        else:
            raise ReplacementError(f"unknown site kind {kind!r} in replacement spec")
        site.inplace = bool(entry.get("inplace", False))
        module = build_activation(config, device=device, dtype=dtype)
        if site.inplace:
            _make_inplace(module)
        sites.append(site)
        modules.append(module)
    record = _install(model, analysis, sites, modules)
    record.sites = [_site_spec(site, module) for site, module in zip(sites, modules)]
    model.__dict__.setdefault(_STATE_ATTR, []).append(record)
    return len(sites)


def _find_node(traced: _Traced, kind: str, target: str, occurrence: int) -> fx.Node | None:
    seen = 0
    for node in traced.graph.nodes:
        if kind == "call":
            match = node.op == "call_module" and node.target == target
        else:
            match = node.op in ("call_function", "call_method") and \
                function_key(node.target, node.op == "call_method") == target
        if match:
            if seen == occurrence:
                return node
            seen += 1
    return None
