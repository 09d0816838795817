"""Tracing of one module's own forward with ``torch.fx``.

Each module that is not a ``torch.nn`` class is traced alone, with every
child kept as a leaf, so that the graph shows the functional activation
calls and the child calls that its own forward makes. When tracing fails,
the failure is reported if a scan of the class source finds activation calls.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass
from typing import Any

from torch import fx, nn

__all__ = ["_GRAPH_ATTR", "_Traced", "_trace", "_is_torch_nn_class", "_activation_calls_in_source"]

_GRAPH_ATTR = "_reactivate_graph"


class _ChildLeafTracer(fx.Tracer):
    """Trace one module's own forward, keeping every submodule as a leaf."""

    def __init__(self, root: nn.Module) -> None:
        super().__init__()
        self._trace_root = root

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return m is not self._trace_root


@dataclass
class _Traced:
    """The graph of one module's own forward."""

    graph: fx.Graph
    constants: dict[str, Any]
    order: dict[fx.Node, int]



def _is_torch_nn_class(module: nn.Module) -> bool:
    return type(module).__module__.startswith("torch.nn.")


_SOURCE_PATTERN = re.compile(
    # Calls through self.<name>(...) are module calls, which the engine reaches without tracing.
    r"(?<!self\.)\b(relu_?|relu6|silu|tanh_?|sigmoid_?|gelu|hardtanh|hardsigmoid|hardswish|leaky_relu|elu|mish)\s*\("
)


def _activation_calls_in_source(module: nn.Module) -> list[str]:
    """Return the activation names that the class source calls as functions or methods."""
    found: set[str] = set()
    for cls in type(module).__mro__:
        if cls is nn.Module or cls.__module__.startswith("torch."):
            break
        try:
            source = inspect.getsource(cls)
        except (OSError, TypeError):
            continue
        found.update(_SOURCE_PATTERN.findall(source))
    return sorted(found)


def _trace(module: nn.Module) -> _Traced:
    """Trace ``module`` alone and undo the tracer's changes to it.

    ``torch.fx`` stores the tensor constants it finds as
    ``_tensor_constantN`` attributes of the traced module. They are removed
    here and put back only when the module's forward is rewritten.
    """
    stored = module.__dict__.get(_GRAPH_ATTR)
    if stored is not None:
        graph = stored
        constants = {}
    else:
        before = set(module.__dict__)
        try:
            graph = _ChildLeafTracer(module).trace(module)
        finally:
            added = set(module.__dict__) - before
            constants = {name: module.__dict__.pop(name) for name in added}
    order = {node: i for i, node in enumerate(graph.nodes)}
    return _Traced(graph, constants, order)
