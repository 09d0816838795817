"""Handling of in-place originals such as ``nn.ReLU(inplace=True)``.

An adaptive module returns a new tensor. That is safe unless code after
the original reads the tensor that the original overwrote, so the traced
graph, or the enclosing ``nn.Sequential``, is searched back to the op that
created the input storage. When a later read is possible, the adaptive
module gets hooks that copy its result into its input, as the original
did.
"""

from __future__ import annotations

import operator

import torch
import torch.nn.functional as F
from torch import fx, nn

from ..activations import AdaptiveActivation
from ..rules import recognise_call, recognise_module
from .sites import _Analysis, _resolve, _Site
from .tracing import _Traced

__all__ = ["_site_needs_inplace", "_make_inplace"]

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
