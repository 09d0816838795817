"""Step 2 of the method: find the activations of any model and replace them.

:func:`replace_activations` works on the user's own module tree, in place:

* **activation modules** (``nn.ReLU``, ``nn.GELU``, ...) anywhere in the tree
  are swapped in their parent (``parent._modules[name]``), so the state dict
  gains only the adaptive parameters under the activation's own name;
* **functional calls** (``F.relu``, ``torch.sigmoid``, ``x.relu_()``, ...) and
  **modules called at several places** are found by tracing, with
  ``torch.fx``, the forward of each module that is not a ``torch.nn`` class,
  with its children kept as leaves. Only a module whose own forward makes such
  a call is rewritten. It keeps its class, attributes and state dict keys.
  It gains one adaptive child per call site, named after the fx node (such
  as ``relu`` or ``relu_1``), and an instance-level ``forward`` generated
  from the rewritten graph. :func:`restore_activations` deletes that
  ``forward`` again.

.. note::
    Limits of the fx route: a module whose forward cannot be traced (data
    dependent control flow, for example) is left as it is. The report and a
    :class:`~reactivate.errors.ReactivateWarning` name it when its source
    calls an activation function, and ``strict_trace=True`` makes that an
    error. Tracing specialises Python control flow on the traced path, so
    ``if mask is None`` branches are fixed as traced. Pass ``example_input``
    to check that the rewritten model computes what the original did. The
    forward of ``torch.nn`` classes (such as ``nn.TransformerEncoderLayer``,
    which calls ``F.relu`` itself) is never rewritten. A rewritten module
    holds a generated ``forward`` that pickling cannot store, so save such
    models as a state dict plus :func:`replacement_spec` (``copy.deepcopy``
    works). ``nn.DataParallel`` replicas would share the generated forward
    of the original module, so use ``DistributedDataParallel`` with a
    rewritten model.
"""

from __future__ import annotations

import inspect
import json
import math
import operator
import re
import warnings
from dataclasses import asdict, dataclass, field
from types import MethodType
from typing import Any, Callable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import fx, nn
from torch.utils._pytree import tree_flatten, tree_map

from .activations import GRANULARITIES, AdaptiveActivation
from .errors import ReactivateWarning, ReplacementError
from .rules import (
    OriginalActivation,
    Preset,
    SkipSite,
    build_activation,
    function_key,
    get_preset,
    recognise_call,
    recognise_module,
)

__all__ = [
    "ReplacementReport",
    "ReplacedSite",
    "SkippedSite",
    "replace_activations",
    "restore_activations",
    "replacement_spec",
    "reapply_replacement",
    "SPEC_FORMAT",
]

SPEC_FORMAT = "reactivate-replacement"
_SPEC_FORMAT_VERSION = 1
_STATE_ATTR = "_reactivate_rounds"
_GRAPH_ATTR = "_reactivate_graph"


# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------


@dataclass
class ReplacedSite:
    """One replaced activation call site.

    Attributes:
        name: qualified name of the adaptive module in the model.
        kind: ``"module"`` (an activation module swapped in place),
            ``"call"`` (a further call of a reused module, given its own
            module) or ``"function"`` (a functional call rewritten by fx).
        original: readable form of the original, such as
            ``"torch.nn.ReLU(inplace=True)"``.
        family: adaptive family, such as ``"ahaf"``.
        granularity: ``"layer"``, ``"channel"`` or ``"neuron"``.
        shape: parameter shape source (input shape without batch), or None.
        exact: True when the family reproduces the original exactly.
        max_abs_error: maximum of ``|adaptive - original|`` over the
            observed input range, or None without ``example_input``.
        max_abs_error_real_line: the same over every real input (``inf``
            when it grows without bound).
        observed_range: ``(min, max)`` of the inputs seen with
            ``example_input``, or None.
        inplace: True when the adaptive module writes its result into its
            input, because code after the original reads the overwritten
            tensor.
        config: the adaptive module's configuration.
    """

    name: str
    kind: str
    original: str
    family: str
    granularity: str
    shape: list[int] | None
    exact: bool
    max_abs_error: float | None
    max_abs_error_real_line: float
    observed_range: tuple[float, float] | None
    inplace: bool
    config: dict[str, Any]


@dataclass
class SkippedSite:
    """One activation left unchanged, with the reason."""

    name: str
    original: str
    reason: str


@dataclass
class ReplacementReport:
    """Result of :func:`replace_activations`.

    Attributes:
        preset: name of the preset used.
        granularity: requested granularity.
        dry_run: True when the model was not changed.
        replaced: one :class:`ReplacedSite` per replaced call site.
        skipped: one :class:`SkippedSite` per activation left alone.
        unreached: ``(module name, reason)`` for each module whose forward
            could not be traced although its source calls an activation.
        output_max_abs_error: with ``example_input``, the maximum absolute
            difference between the model's outputs before and after.
    """

    preset: str
    granularity: str
    dry_run: bool
    replaced: list[ReplacedSite] = field(default_factory=list)
    skipped: list[SkippedSite] = field(default_factory=list)
    unreached: list[tuple[str, str]] = field(default_factory=list)
    output_max_abs_error: float | None = None

    def __len__(self) -> int:
        return len(self.replaced)

    def to_dict(self) -> dict[str, Any]:
        """Return the report as JSON-serialisable dicts and lists."""
        return {
            "preset": self.preset,
            "granularity": self.granularity,
            "dry_run": self.dry_run,
            "replaced": [asdict(s) for s in self.replaced],
            "skipped": [asdict(s) for s in self.skipped],
            "unreached": [list(u) for u in self.unreached],
            "output_max_abs_error": self.output_max_abs_error,
        }

    def _rows(self) -> list[list[str]]:
        rows = []
        for s in self.replaced:
            error = "exact" if s.exact and (s.max_abs_error or 0.0) == 0.0 else _fmt(s.max_abs_error)
            rows.append([
                s.name, s.original, s.family, s.granularity, error,
                _fmt(s.max_abs_error_real_line), "yes" if s.inplace else "",
            ])
        return rows

    def to_markdown(self) -> str:
        """Return the report as Markdown tables."""
        verb = "Would replace" if self.dry_run else "Replaced"
        lines = [f"{verb} {len(self.replaced)} activation sites (preset {self.preset!r}, "
                 f"granularity {self.granularity!r}); left {len(self.skipped)} alone.", ""]
        if self.replaced:
            lines += [
                "| site | original | family | granularity | max abs error (observed) | max abs error (real line) | in place |",
                "|---|---|---|---|---|---|---|",
            ]
            lines += ["| " + " | ".join(row) + " |" for row in self._rows()]
            lines.append("")
        if self.skipped:
            lines += ["| left alone | original | reason |", "|---|---|---|"]
            lines += [f"| {s.name} | {s.original} | {s.reason} |" for s in self.skipped]
            lines.append("")
        if self.unreached:
            lines += ["| not traced | reason |", "|---|---|"]
            lines += [f"| {name} | {reason} |" for name, reason in self.unreached]
            lines.append("")
        if self.output_max_abs_error is not None:
            lines.append(f"Max abs output difference on example_input: {_fmt(self.output_max_abs_error)}")
        return "\n".join(lines).rstrip() + "\n"

    def __str__(self) -> str:
        verb = "would replace" if self.dry_run else "replaced"
        lines = [f"ReplacementReport: {verb} {len(self.replaced)}, left alone {len(self.skipped)} "
                 f"(preset {self.preset!r}, granularity {self.granularity!r})"]
        for row in self._rows():
            name, original, family, gran, err, real, inplace = row
            tail = " [in place]" if inplace else ""
            lines.append(f"  {name}: {original} -> {family} ({gran}), error {err}, real line {real}{tail}")
        for s in self.skipped:
            lines.append(f"  {s.name}: {s.original} left alone: {s.reason}")
        for name, reason in self.unreached:
            lines.append(f"  {name or '<model>'}: not traced: {reason}")
        if self.output_max_abs_error is not None:
            lines.append(f"  max abs output difference on example_input: {_fmt(self.output_max_abs_error)}")
        return "\n".join(lines)

    __repr__ = __str__


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if value == 0:
        return "0"
    if math.isinf(value):
        return "inf"
    return f"{value:.3g}"


# ---------------------------------------------------------------------------
# Analysis: tracing and call sites
# ---------------------------------------------------------------------------


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


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


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


# ---------------------------------------------------------------------------
# In-place analysis
# ---------------------------------------------------------------------------

_VIEW_METHODS = {
    "view", "view_as", "reshape", "reshape_as", "flatten", "unflatten", "transpose", "permute",
    "squeeze", "unsqueeze", "contiguous", "expand", "expand_as", "narrow", "t", "detach",
    "__getitem__", "as_strided", "movedim", "swapaxes",
}
_VIEW_FUNCTIONS = {
    operator.getitem, operator.iadd, operator.isub, operator.imul, operator.itruediv,
    torch.flatten, torch.reshape, torch.transpose, torch.permute, torch.squeeze, torch.unsqueeze,
    torch.narrow, torch.movedim, torch.detach,
}
_FRESH_FUNCTIONS = {
    operator.add, operator.sub, operator.mul, operator.truediv, operator.matmul, operator.neg,
    torch.add, torch.sub, torch.mul, torch.div, torch.cat, torch.stack, torch.matmul, torch.bmm,
    torch.conv2d, F.conv1d, F.conv2d, F.conv3d, F.linear, F.batch_norm, F.layer_norm, F.group_norm,
    F.avg_pool2d, F.max_pool2d, F.adaptive_avg_pool2d, F.adaptive_max_pool2d, F.interpolate,
    F.dropout, torch.mean, torch.sum,
}
_FRESH_METHODS = {"add", "sub", "mul", "div", "matmul", "mean", "sum", "clone", "float", "pow"}
_FRESH_MODULES = (
    nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d,
    nn.Linear, nn.Bilinear, nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm,
    nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d,
    nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d, nn.AdaptiveMaxPool2d,
    nn.Embedding, nn.Upsample, nn.Softmax, AdaptiveActivation,
)


def _module_is_fresh(module: nn.Module) -> bool:
    """True when the module always returns a new tensor, never its input."""
    if isinstance(module, _FRESH_MODULES):
        return True
    if type(module) is nn.Sequential:
        # A Sequential returns what its last module returns.
        children = [m for m in module._modules.values() if m is not None]
        return bool(children) and _module_is_fresh(children[-1])
    original = recognise_module(module)
    return original is not None and not original.inplace


def _node_needs_inplace(owner: nn.Module, traced: _Traced, node: fx.Node) -> bool:
    """Decide whether code after ``node`` can read the tensor that it overwrites.

    Follows the input back through views and in-place updates to the op
    that created the storage. The write matters when that storage is a
    forward argument or attribute, when an unknown op created it, or when
    any alias of it is used after ``node``.
    """
    if node.args:
        current = node.args[0]
    else:
        current = node.kwargs.get("input")
    if not isinstance(current, fx.Node):
        return True
    aliases = [current]
    while True:
        if current.op in ("placeholder", "get_attr"):
            return True
        if current.op == "call_module":
            try:
                producer = owner.get_submodule(current.target)
            except AttributeError:
                return True
            if not _module_is_fresh(producer):
                return True
            break
        if current.op == "call_method":
            name = current.target
            if name in _FRESH_METHODS:
                break
            if name in _VIEW_METHODS or name.endswith("_"):
                current = current.args[0]
            else:
                return True
        elif current.op == "call_function":
            target = current.target
            if target in _FRESH_FUNCTIONS:
                break
            original, _ = recognise_call(target, current.args, current.kwargs)
            if original is not None and not original.inplace:
                break
            if target in _VIEW_FUNCTIONS or (original is not None and original.inplace):
                current = current.args[0] if current.args else current.kwargs.get("input")
            else:
                return True
        else:
            return True
        if not isinstance(current, fx.Node):
            return True
        aliases.append(current)
    position = traced.order[node]
    for alias in aliases:
        for user in alias.users:
            if user is not node and traced.order[user] > position:
                return True
    return False


def _slot_needs_inplace(model: nn.Module, slot: str) -> bool:
    parent, attr = _resolve(model, slot)
    if not isinstance(parent, nn.Sequential):
        return True
    for name, module in parent._modules.items():
        if name == attr:
            return True
        if module is not None and _module_is_fresh(module):
            return False
    return True


def _site_needs_inplace(analysis: _Analysis, site: _Site) -> bool:
    if not site.original.inplace:
        return False
    if site.kind != "module":
        return _node_needs_inplace(analysis.modules[site.parent_path], analysis.traced[site.parent_path], site.node)
    for kind, caller in site.callers:
        if kind == "node":
            path, node = caller
            if _node_needs_inplace(analysis.modules[path], analysis.traced[path], node):
                return True
        else:
            parent_path = caller.rpartition(".")[0]
            parent = analysis.modules.get(parent_path, analysis.model)
            # A traced parent calls its children through graph nodes, handled above.
            if parent_path in analysis.traced and not isinstance(parent, nn.Sequential):
                continue
            if _slot_needs_inplace(analysis.model, caller):
                return True
    return False


def _inplace_pre_hook(module: nn.Module, args: tuple) -> tuple | None:
    # NOTE: the input waits in the module's __dict__ until the forward hook
    # runs, so one instance must not run in two threads at once.
    x = args[0]
    module.__dict__["_reactivate_target"] = x
    if torch.is_grad_enabled():
        # The adaptive function keeps its input for backward, so it must get
        # a copy that the in-place write below leaves untouched.
        return (x.clone(),) + tuple(args[1:])
    return None


def _inplace_hook(module: nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor:
    target = module.__dict__.pop("_reactivate_target")
    return target.copy_(output)


def _make_inplace(module: nn.Module) -> None:
    """Make ``module`` write its result into its input, as ``inplace=True`` modules do."""
    module.register_forward_pre_hook(_inplace_pre_hook)
    module.register_forward_hook(_inplace_hook)
    module.__dict__["reactivate_inplace"] = True


# ---------------------------------------------------------------------------
# Installing modules and rewritten forwards, and undoing it
# ---------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------
# Calibration with example inputs
# ---------------------------------------------------------------------------


class _Probe(nn.Module):
    """Temporary stand-in that applies the original and records its inputs."""

    def __init__(self, function: Callable) -> None:
        super().__init__()
        self.function = function
        self.shapes: set[tuple[int, ...]] = set()
        self.low: torch.Tensor | None = None
        self.high: torch.Tensor | None = None
        self.device: torch.device | None = None
        self.dtype: torch.dtype | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if isinstance(x, torch.Tensor):
            self.shapes.add(tuple(x.shape))
            self.device, self.dtype = x.device, x.dtype
            if x.is_floating_point() and x.numel():
                finite = x.detach()[torch.isfinite(x.detach())]
                if finite.numel():
                    low, high = torch.aminmax(finite)
                    self.low = low if self.low is None else torch.minimum(self.low, low)
                    self.high = high if self.high is None else torch.maximum(self.high, high)
        return self.function(x)

    def observed_range(self) -> tuple[float, float] | None:
        if self.low is None:
            return None
        return (float(self.low), float(self.high))


def _clone_input(example: Any) -> Any:
    return tree_map(lambda v: v.clone() if isinstance(v, torch.Tensor) else v, example)


def _run(model: nn.Module, example: Any) -> Any:
    example = _clone_input(example)
    if isinstance(example, Mapping):
        return model(**example)
    if isinstance(example, (tuple, list)):
        return model(*example)
    return model(example)


class _EvalNoGrad:
    """Run a model in eval mode without gradients, then restore every training flag."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model

    def __enter__(self):
        self.flags = [(m, m.training) for m in self.model.modules()]
        self.model.eval()
        self.grad = torch.no_grad()
        self.grad.__enter__()
        return self

    def __exit__(self, *exc):
        self.grad.__exit__(*exc)
        for module, flag in self.flags:
            module.training = flag
        return False


def _output_difference(reference: Any, other: Any) -> float:
    ref_leaves, ref_spec = tree_flatten(reference)
    other_leaves, other_spec = tree_flatten(other)
    if ref_spec != other_spec:
        return math.inf
    worst = 0.0
    for a, b in zip(ref_leaves, other_leaves):
        if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
            if a.shape != b.shape:
                return math.inf
            if a.numel():
                worst = max(worst, float((a.float() - b.float()).abs().max()))
    return worst


def _output_scale(reference: Any) -> float:
    leaves, _ = tree_flatten(reference)
    scale = 0.0
    for a in leaves:
        if isinstance(a, torch.Tensor) and a.numel() and a.is_floating_point():
            scale = max(scale, float(a.abs().max()))
    return scale


# ---------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------


def _patterns(value: str | Sequence[str] | None, argument: str) -> list[re.Pattern]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    compiled = []
    for pattern in value:
        try:
            compiled.append(re.compile(pattern))
        except (re.error, TypeError) as exc:
            raise ReplacementError(f"{argument}={pattern!r} is not a valid regular expression: {exc}") from None
    return compiled


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


_ERROR_CACHE: dict[str, Any] = {}


def _error_bound(module: AdaptiveActivation, interval: tuple[float, float] | None):
    key = json.dumps([module.config(), interval], sort_keys=True, default=str)
    if len(_ERROR_CACHE) > 4096:
        _ERROR_CACHE.clear()
    if key not in _ERROR_CACHE:
        if interval is None:
            _ERROR_CACHE[key] = module.error_bound()
        else:
            low, high = interval
            if not high > low:
                low, high = low - 1e-3, high + 1e-3
            _ERROR_CACHE[key] = module.error_bound((low, high))
    return _ERROR_CACHE[key]


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


def replace_activations(
    model: nn.Module,
    preset: str | Preset | Mapping[str, Any] = "paper",
    *,
    example_input: Any = None,
    granularity: str = "layer",
    include: str | Sequence[str] | None = None,
    exclude: str | Sequence[str] | None = None,
    filter_fn: Callable[[nn.Module, str], bool] | None = None,
    types: type | tuple[type, ...] | None = None,
    dry_run: bool = False,
    share_reused: bool = False,
    calibrate: bool = False,
    strict_trace: bool = False,
) -> ReplacementReport:
    r"""Replace the classic activations of ``model`` with adaptive ones, in place.

    Each replaced site gets an adaptive module that starts out reproducing
    the original (exactly, or within the error bound in the report), so the
    trained weights stay valid. Weights are never copied: the model keeps
    every parameter and buffer object, and gains only the adaptive
    parameters.

    Args:
        model: any ``nn.Module``.
        preset: ``"paper"`` (ReLU, SiLU -> AHAF; Tanh, Sigmoid -> F-neuron
            with 18 functions on [-4, 4]), ``"exact"`` (only activations a
            family reproduces exactly or to float rounding),
            ``"approximate"``, a registered preset name, or a dict such as
            ``{"relu": "leaf", "gelu": factory}``. Default: ``"paper"``.
        example_input: a tensor, a tuple of positional arguments or a dict of
            keyword arguments for ``model``. When given, one forward pass in
            eval mode without gradients records each site's input shape and
            range, checks that the rewritten model computes what the original
            did, and the report gives errors over the observed ranges.
            Required for ``granularity="channel"`` or ``"neuron"`` and for
            ``calibrate=True``. Default: None.
        granularity: ``"layer"`` (scalar parameters), ``"channel"`` (one set
            per index of dimension 1) or ``"neuron"`` (one set per input
            element; fixes the input shape). Default: ``"layer"``.
        include: regular expression(s) searched (``re.search``) in each
            site's name; only matching sites are replaced. A further call
            of a reused module also matches by the reused module's name.
            Default: None (all sites).
        exclude: regular expression(s); matching sites are left alone.
            A pattern that matches nothing warns. Default: None.
        filter_fn: predicate ``filter_fn(module, name) -> bool``; ``module``
            is the original activation module, or for a functional call an
            equivalent ``torch.nn`` module (``nn.ReLU`` for ``F.relu``).
            Default: None.
        types: only replace originals that are instances of these
            ``torch.nn`` classes (functional calls count as their module
            equivalents). Default: None (all).
        dry_run: report what would be replaced and leave the model as it is.
            With ``example_input`` the forward pass still runs, through
            temporary probes that are removed again. Default: False.
        share_reused: give a module called at several places a single
            adaptive module instead of one per call site. Default: False.
        calibrate: take each F-neuron's interval from the observed input
            range (rounded outward to 0.25) instead of [-4, 4]. Default: False.
        strict_trace: raise instead of warning when a module whose source
            calls an activation function cannot be traced. Default: False.

    Returns:
        A :class:`ReplacementReport` with one entry per replaced call site and
        one per activation left alone, with the reason.

    Raises:
        ReplacementError: on invalid arguments, a missing ``example_input``,
            an untraceable module with ``strict_trace=True``, or a rewrite
            that changes the output of ``example_input``. The model is left
            unchanged.

    Example:
        >>> model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
        >>> report = replace_activations(model, "paper")
        >>> type(model[1]).__name__
        'AHAF'

    .. note::
        Calibration runs in eval mode (BatchNorm uses its running statistics
        and keeps them, Dropout is off); training flags are restored after.
        The gamma of 1e9 that AHAF uses for ReLU overflows float16, so
        convert a float16 model after the replacement, or use bfloat16.
    """
    if not isinstance(model, nn.Module):
        raise ReplacementError(f"replace_activations needs an nn.Module, got {type(model).__name__}")
    chosen = get_preset(preset)
    if granularity not in GRANULARITIES:
        raise ReplacementError(
            f"granularity={granularity!r} is invalid; use one of {', '.join(repr(g) for g in GRANULARITIES)}"
        )
    if granularity != "layer" and example_input is None:
        raise ReplacementError(
            f"granularity={granularity!r} needs example_input=, a batch the model accepts, "
            "so that each site's input shape is known; or use granularity='layer'"
        )
    if calibrate and example_input is None:
        raise ReplacementError("calibrate=True needs example_input=, a batch whose activation ranges to use")
    includes = _patterns(include, "include")
    excludes = _patterns(exclude, "exclude")
    if filter_fn is not None and not callable(filter_fn):
        raise ReplacementError(f"filter_fn={filter_fn!r} is not callable; give a function (module, name) -> bool")
    if types is not None:
        types = tuple(types) if isinstance(types, (list, tuple)) else (types,)
        if not all(isinstance(t, type) for t in types):
            raise ReplacementError(f"types={types!r} is invalid; give nn.Module classes such as (nn.ReLU,)")

    # 1. Find every site; nothing in the model changes here.
    analysis = _Analysis(model)
    sites, skipped = _find_sites(analysis, share_reused)
    report = ReplacementReport(chosen.name, granularity, dry_run, skipped=skipped)
    for path, reason in analysis.untraced.items():
        module = analysis.modules[path]
        if _is_torch_nn_class(module):
            report.unreached.append((path, reason))
            continue
        calls = _activation_calls_in_source(module)
        if calls:
            report.unreached.append((path, f"calls {', '.join(calls)} but tracing failed: {reason}"))
    if report.unreached:
        names = ", ".join(repr(p or "<model>") for p, _ in report.unreached)
        message = (f"could not trace the forward of {names}, so activation functions called there "
                   f"stay unchanged ({report.unreached[0][1]})")
        if strict_trace:
            raise ReplacementError(message + "; make the forward traceable by torch.fx or pass strict_trace=False")
        warnings.warn(message, ReactivateWarning, stacklevel=2)

    # 2. Select sites.
    used_excludes: set[int] = set()
    used_includes: set[int] = set()
    selected: list[_Site] = []
    for site in sites:
        described = site.original.describe()
        hit = [i for i, p in enumerate(excludes) if any(p.search(n) for n in site.match_names)]
        used_excludes.update(hit)
        if hit:
            report.skipped.append(SkippedSite(site.name, described, f"excluded by {excludes[hit[0]].pattern!r}"))
            continue
        if includes:
            hit = [i for i, p in enumerate(includes) if any(p.search(n) for n in site.match_names)]
            used_includes.update(hit)
            if not hit:
                report.skipped.append(SkippedSite(site.name, described, "not matched by include"))
                continue
        module = site.original.module
        if types is not None and not isinstance(module, types):
            report.skipped.append(SkippedSite(site.name, described, "not of the requested types"))
            continue
        if filter_fn is not None and not filter_fn(module, site.name):
            report.skipped.append(SkippedSite(site.name, described, "rejected by filter_fn"))
            continue
        if chosen.factory_for(site.original.name) is None:
            known = ", ".join(sorted(chosen.factories))
            report.skipped.append(SkippedSite(
                site.name, described, f"preset {chosen.name!r} has no family for {site.original.name} "
                f"(it covers {known})"))
            continue
        selected.append(site)
    for i, pattern in enumerate(excludes):
        if i not in used_excludes:
            warnings.warn(f"exclude pattern {pattern.pattern!r} matched no activation site", ReactivateWarning,
                          stacklevel=2)
    for i, pattern in enumerate(includes):
        if i not in used_includes:
            warnings.warn(f"include pattern {pattern.pattern!r} matched no activation site", ReactivateWarning,
                          stacklevel=2)
    for site in selected:
        site.inplace = _site_needs_inplace(analysis, site)

    # 3. Observe the sites on the example input through temporary probes.
    probes: list[_Probe] = []
    reference = None
    if example_input is not None and selected:
        probes = [_Probe(site.original.module if site.kind != "function" else site.probe_fn)
                  for site in selected]
        with _EvalNoGrad(model):
            try:
                reference = _run(model, example_input)
            except Exception as exc:
                raise ReplacementError(
                    f"the model failed on example_input ({type(exc).__name__}: {exc}); "
                    "give a batch that model(example_input) accepts") from None
            record = _install(model, analysis, selected, probes)
            try:
                probed = _run(model, example_input)
            except Exception as exc:
                raise ReplacementError(
                    f"the rewritten model failed on example_input ({type(exc).__name__}: {exc}); a traced "
                    "forward depends on control flow that fx fixed while tracing. Exclude the affected "
                    "sites with exclude= or restructure the forward") from None
            finally:
                _undo(record)
        difference = _output_difference(reference, probed)
        if not difference <= 1e-6 * max(1.0, _output_scale(reference)):
            raise ReplacementError(
                "rewriting the traced modules changed the model's output on example_input "
                f"(max abs difference {difference:.3g}); a traced forward depends on control flow that "
                "fx fixed while tracing. Exclude the affected sites with exclude= or restructure the forward")

    # 4. Build every adaptive module before touching the model.
    modules: list[AdaptiveActivation] = []
    final: list[_Site] = []
    for index, site in enumerate(selected):
        probe = probes[index] if probes else None
        observed = probe.observed_range() if probe is not None else None
        site.original.observed_range = observed if calibrate else None
        try:
            config = chosen.factory_for(site.original.name)(site.original)
        except SkipSite as exc:
            report.skipped.append(SkippedSite(site.name, site.original.describe(), str(exc)))
            continue
        if config is None:
            report.skipped.append(SkippedSite(site.name, site.original.describe(), "the preset's factory declined"))
            continue
        config = dict(config)
        config["granularity"] = granularity
        if granularity != "layer":
            shape, reason = _site_shape(probe, granularity)
            if shape is None:
                report.skipped.append(SkippedSite(site.name, site.original.describe(), reason))
                continue
            config["shape"] = list(shape)
        if probe is not None and probe.device is not None and probe.dtype is not None and probe.dtype.is_floating_point:
            device, dtype = probe.device, probe.dtype
        else:
            device, dtype = _device_dtype(model, site.slots[0] if site.slots else site.parent_path)
        try:
            module = build_activation(config, device=device, dtype=dtype)
        except ValueError as exc:
            raise ReplacementError(f"cannot build the adaptive module for {site.name}: {exc}") from None
        if site.inplace:
            _make_inplace(module)
        site.config, site.module = config, module
        modules.append(module)
        final.append(site)
        bound_real = _error_bound(module, None)
        bound_observed = _error_bound(module, observed) if observed is not None else None
        report.replaced.append(ReplacedSite(
            name=site.name, kind=site.kind, original=site.original.describe(), family=module.family,
            granularity=granularity, shape=config.get("shape"), exact=bound_real.exact,
            max_abs_error=bound_observed.max_abs_error if bound_observed is not None else None,
            max_abs_error_real_line=bound_real.max_abs_error_real_line,
            observed_range=observed, inplace=site.inplace, config=module.config(),
        ))
    if dry_run or not final:
        return report

    # 5. Change the model.
    record = _install(model, analysis, final, modules)
    record.sites = [_site_spec(site, module) for site, module in zip(final, modules)]
    model.__dict__.setdefault(_STATE_ATTR, []).append(record)
    if reference is not None:
        with _EvalNoGrad(model):
            report.output_max_abs_error = _output_difference(reference, _run(model, example_input))
    return report


def _site_shape(probe: _Probe | None, granularity: str) -> tuple[tuple[int, ...] | None, str]:
    if probe is None or not probe.shapes:
        return None, "example_input does not reach this site, so its input shape is unknown"
    shapes = sorted(probe.shapes)
    if any(len(s) < 2 for s in shapes):
        return None, f"input shape {shapes[0]} has no dimension after the batch dimension"
    if granularity == "channel":
        channels = {s[1] for s in shapes}
        if len(channels) > 1:
            return None, f"inputs with different channel counts {sorted(channels)}"
        return (shapes[0][1],), ""
    inner = {s[1:] for s in shapes}
    if len(inner) > 1:
        return None, (f"inputs of different shapes {sorted(inner)}; per-neuron parameters need one "
                      "fixed shape, use granularity='channel' or 'layer'")
    return shapes[0][1:], ""


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
    from . import __version__

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


def restore_activations(model: nn.Module) -> int:
    """Put the original activations back, undoing every replacement on ``model``.

    Activation modules return to their slots, rewritten forwards are removed
    (the class's own forward, with its functional calls, applies again) and
    the adaptive modules with their parameters are dropped.

    Args:
        model: a model changed by :func:`replace_activations` or
            :func:`reapply_replacement`.

    Returns:
        The number of adaptive modules removed (0, with a warning, when
        the model had none).

    Example:
        >>> replace_activations(model)  # doctest: +SKIP
        >>> restore_activations(model)  # doctest: +SKIP
    """
    rounds = model.__dict__.pop(_STATE_ATTR, None)
    if not rounds:
        warnings.warn("restore_activations: the model has no replaced activations", ReactivateWarning, stacklevel=2)
        return 0
    count = 0
    for record in reversed(rounds):
        _undo(record)
        count += len(record.sites)
    return count

