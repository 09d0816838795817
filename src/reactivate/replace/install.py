"""Installing adaptive modules in a model, and undoing it.

Module sites are swapped in their parent's ``_modules``. Call and function
sites become new children, and their parent gets an instance-level
``forward`` generated from a copy of its traced graph that calls those
children. Every change is recorded in a :class:`_Round`, which
:func:`_undo` reverts, and the model keeps its rounds under
``_STATE_ATTR`` so that they can be described or restored later.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MethodType
from typing import Any

from torch import fx, nn

from .sites import _Analysis, _resolve, _Site
from .tracing import _GRAPH_ATTR, _Traced

__all__ = ["_STATE_ATTR", "_Round", "_install", "_undo"]

_STATE_ATTR = "_reactivate_rounds"


@dataclass
class _Round:
    """Record of the changes one replacement made, kept on the model to restore or describe it."""

    sites: list[dict[str, Any]]
    slot_changes: list[tuple[nn.Module, str, nn.Module]] = field(default_factory=list)
    added: list[tuple[nn.Module, str]] = field(default_factory=list)
    forwards: list[tuple[nn.Module, Any, dict[str, Any]]] = field(default_factory=list)
    flags: list[tuple[nn.Module, str, Any]] = field(default_factory=list)


def _rewrite_graph(traced: _Traced, sites: list[_Site]) -> fx.Graph:
    """Copy a traced graph and point its call sites at the new children."""
    graph = fx.Graph()
    mapping: dict[fx.Node, fx.Node] = {}
    output = graph.graph_copy(traced.graph, mapping)
    graph.output(output)
    for site in sites:
        node = mapping[site.node]
        if site.kind == "call":
            node.target = site.attr
            continue
        source = node.args[0] if node.args else node.kwargs["input"]
        with graph.inserting_before(node):
            call = graph.call_module(site.attr, (source,))
        node.replace_all_uses_with(call)
        graph.erase_node(node)
    graph.lint()
    return graph


def _install(model: nn.Module, analysis: _Analysis, sites: list[_Site], modules: list[nn.Module]) -> _Round:
    """Put ``modules`` at ``sites``; on any failure undo everything and re-raise."""
    record = _Round(sites=[])
    try:
        by_parent: dict[str, list[_Site]] = {}
        for site, module in zip(sites, modules):
            if site.kind == "module":
                for slot in site.slots:
                    parent, attr = _resolve(model, slot)
                    record.slot_changes.append((parent, attr, parent._modules[attr]))
                    parent._modules[attr] = module
                    if getattr(parent, "activation_relu_or_gelu", 0):
                        # nn.TransformerEncoderLayer's inference fast path would apply
                        # relu or gelu natively and skip the new module; this flag turns it off.
                        record.flags.append((parent, "activation_relu_or_gelu", parent.activation_relu_or_gelu))
                        parent.activation_relu_or_gelu = 0
            else:
                parent = analysis.modules[site.parent_path]
                parent.add_module(site.attr, module)
                record.added.append((parent, site.attr))
                by_parent.setdefault(site.parent_path, []).append(site)
        for path, parent_sites in by_parent.items():
            parent = analysis.modules[path]
            traced = analysis.traced[path]
            graph = _rewrite_graph(traced, parent_sites)
            previous = {k: parent.__dict__[k] for k in ("forward", _GRAPH_ATTR) if k in parent.__dict__}
            record.forwards.append((parent, previous, traced.constants))
            for name, value in traced.constants.items():
                parent.__dict__[name] = value
            generated = fx.GraphModule(parent, graph, class_name=type(parent).__name__)
            parent.__dict__["forward"] = MethodType(type(generated).forward, parent)
            parent.__dict__[_GRAPH_ATTR] = graph
    except BaseException:
        _undo(record)
        raise
    return record


def _undo(record: _Round) -> None:
    for owner, name, value in reversed(record.flags):
        setattr(owner, name, value)
    for parent, previous, constants in reversed(record.forwards):
        for name in ("forward", _GRAPH_ATTR, *constants):
            parent.__dict__.pop(name, None)
        parent.__dict__.update(previous)
    for parent, attr in reversed(record.added):
        parent._modules.pop(attr, None)
    for parent, attr, module in reversed(record.slot_changes):
        parent._modules[attr] = module
