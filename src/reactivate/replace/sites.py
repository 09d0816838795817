"""Discovery of the activation call sites of a model, before any change.

A site is an activation module registered in the tree, a further call of
a reused activation module, or a functional call such as ``F.relu`` found
in a traced forward. :func:`_find_sites` lists them all without changing
the model, and the helpers here locate a site's parent, a free attribute
name for a new child, and the device and dtype for its parameters.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import fx, nn

from ..activations import AdaptiveActivation
from ..errors import ReplacementError
from ..rules import OriginalActivation, function_key, recognise_call, recognise_module
from .report import SkippedSite
from .tracing import _GRAPH_ATTR, _is_torch_nn_class, _trace, _Traced

__all__ = ["_Site", "_Analysis", "_resolve", "_free_attr", "_find_sites", "_call_probe", "_device_dtype"]

def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


@dataclass
class _Site:
    """A planned replacement of one call site."""

    kind: str  # "module", "call" or "function"
    name: str
    original: OriginalActivation
    slots: list[str] = field(default_factory=list)  # "module": where the instance sits
    parent_path: str = ""  # "call"/"function": module whose forward is rewritten
    attr: str = ""  # "call"/"function": name of the new child
    node: fx.Node | None = None
    target: str = ""  # call_module target, or function key
    occurrence: int = 0
    callers: list[tuple[str, Any]] = field(default_factory=list)  # module sites: ("node", (path, node)) etc.
    match_names: list[str] = field(default_factory=list)
    inplace: bool = False
    config: dict[str, Any] | None = None
    module: AdaptiveActivation | None = None
    probe_fn: Callable | None = None


class _Analysis:
    """Everything found in a model before any change is made to it."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.modules = dict(model.named_modules())
        self.traced: dict[str, _Traced] = {}
        self.untraced: dict[str, str] = {}

    def trace(self, path: str) -> _Traced:
        if path not in self.traced:
            self.traced[path] = _trace(self.modules[path])
        return self.traced[path]


def _resolve(model: nn.Module, path: str) -> tuple[nn.Module, str]:
    """Return the parent module and child name of the submodule at ``path``."""
    parent_path, _, attr = path.rpartition(".")
    try:
        parent = model.get_submodule(parent_path) if parent_path else model
    except AttributeError:
        raise ReplacementError(f"the model has no submodule {parent_path!r}") from None
    if attr not in parent._modules:
        raise ReplacementError(f"the model has no submodule {path!r}")
    return parent, attr


def _free_attr(parent: nn.Module, expected_name: str, taken: set[str]) -> str:
    name = expected_name
    index = 1
    while name in taken or hasattr(parent, name):
        name = f"{expected_name}_site{index}"
        index += 1
    taken.add(name)
    return name


def _find_sites(analysis: _Analysis, share_reused: bool) -> tuple[list[_Site], list[SkippedSite]]:
    """Find every activation call site of the model."""
    model = analysis.model
    skipped: list[SkippedSite] = []

    # Activation instances and every place they are registered.
    slots_of: dict[int, list[str]] = {}
    instances: dict[int, nn.Module] = {}
    for path, module in model.named_modules(remove_duplicate=False):
        if path and recognise_module(module) is not None:
            slots_of.setdefault(id(module), []).append(path)
            instances[id(module)] = module
    if recognise_module(model) is not None:
        skipped.append(SkippedSite("", recognise_module(model).describe(),
                                   "the model itself is an activation; wrap it in a container"))

    # Trace the forward of every module that is not a torch.nn class.
    calls_by_slot: dict[str, list[tuple[str, fx.Node]]] = {}
    functional: list[_Site] = []
    for path, module in analysis.modules.items():
        if id(module) in instances or isinstance(module, AdaptiveActivation):
            continue
        if _is_torch_nn_class(module) and _GRAPH_ATTR not in module.__dict__:
            functions = [key for value in module.__dict__.values() if (key := function_key(value)) is not None]
            if functions:
                # nn.TransformerEncoderLayer, for one, keeps F.relu or F.gelu as an attribute.
                analysis.untraced[path] = (f"{type(module).__name__} is a torch.nn class that calls "
                                           f"{functions[0]} inside its own forward")
            continue
        try:
            traced = analysis.trace(path)
        except Exception as exc:  # any user code can fail under fx
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            analysis.untraced[path] = f"{type(exc).__name__}: {message}"[:200]
            continue
        counts: dict[str, int] = {}
        taken: set[str] = set()
        for node in traced.graph.nodes:
            if node.op == "call_module":
                try:
                    child = module.get_submodule(node.target)
                except AttributeError:
                    continue
                if id(child) in instances:
                    calls_by_slot.setdefault(_join(path, node.target), []).append((path, node))
            elif node.op in ("call_function", "call_method"):
                method = node.op == "call_method"
                key = function_key(node.target, method)
                if key is None:
                    continue
                occurrence = counts.get(key, 0)
                counts[key] = occurrence + 1
                original, reason = recognise_call(node.target, node.args, node.kwargs, method)
                if original is None:
                    skipped.append(SkippedSite(_join(path, node.name), key, reason or "not recognised"))
                    continue
                attr = _free_attr(module, node.name, taken)
                name = _join(path, attr)
                functional.append(_Site(
                    "function", name, original, parent_path=path, attr=attr, node=node,
                    target=key, occurrence=occurrence, match_names=[name],
                    probe_fn=_call_probe(node, method),
                ))

    sites: list[_Site] = []
    taken_by_parent: dict[str, set[str]] = {}
    for key, module in instances.items():
        slots = slots_of[key]
        original = recognise_module(module)
        if share_reused:
            callers = [("node", c) for s in slots for c in calls_by_slot.get(s, [])]
            callers += [("slot", s) for s in slots]
            sites.append(_Site("module", slots[0], original, slots=list(slots), callers=callers,
                               match_names=list(slots)))
            continue
        for slot in slots:
            calls = calls_by_slot.get(slot, [])
            first = [("node", calls[0])] if calls else []
            sites.append(_Site("module", slot, original, slots=[slot], callers=first + [("slot", slot)],
                               match_names=[slot]))
            for parent_path, node in calls[1:]:
                taken = taken_by_parent.setdefault(parent_path, set())
                attr = _free_attr(analysis.modules[parent_path], node.name, taken)
                name = _join(parent_path, attr)
                occurrence = [n.target for n in analysis.traced[parent_path].graph.nodes
                              if n.op == "call_module" and n is not node and
                              analysis.traced[parent_path].order[n] < analysis.traced[parent_path].order[node]
                              ].count(node.target)
                sites.append(_Site(
                    "call", name, recognise_module(module), parent_path=parent_path, attr=attr, node=node,
                    target=node.target, occurrence=occurrence, callers=[("node", (parent_path, node))],
                    match_names=[name, slot],
                ))
    # Names of functional sites must not collide with names of call sites in the same parent.
    for site in functional:
        taken = taken_by_parent.setdefault(site.parent_path, set())
        if site.attr in taken:
            site.attr = _free_attr(analysis.modules[site.parent_path], site.attr, taken)
            site.name = _join(site.parent_path, site.attr)
            site.match_names = [site.name]
        taken.add(site.attr)
    return sites + functional, skipped


def _call_probe(node: fx.Node, method: bool) -> Callable:
    """Return a function that repeats a traced call on a new input."""
    target = node.target
    extra = tuple(node.args[1:])
    kwargs = {k: v for k, v in node.kwargs.items() if k != "input"}
    if method:
        return lambda x: getattr(x, target)(*extra, **kwargs)
    return lambda x: target(x, *extra, **kwargs)


def _device_dtype(model: nn.Module, path: str) -> tuple[torch.device | None, torch.dtype | None]:
    """Return the device and floating dtype of the nearest tensors to ``path``."""
    parts = path.split(".") if path else []
    for depth in range(len(parts), -1, -1):
        try:
            module = model.get_submodule(".".join(parts[:depth]))
        except AttributeError:
            continue
        for tensor in list(module.parameters()) + list(module.buffers()):
            if tensor.is_floating_point():
                return tensor.device, tensor.dtype
    return None, None
