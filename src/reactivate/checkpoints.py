"""Step 3 of the method: load pre-trained weights with a key audit; adapter files.

:func:`load_pretrained` accepts the checkpoint layouts found in the wild and
refuses to hide problems: only adaptive activation parameters (which the
pre-trained model never had) may be missing. Every other missing,
unexpected or wrongly shaped tensor is an error that names the keys.

Adapter files hold only the adaptive parameters. An adapter is a single
safetensors file. Its tensors sit under the model's own key names (such as
``layer1.0.relu.beta``). Its metadata contains, as JSON, the replacement
description from :func:`reactivate.replacement_spec` (family, arguments,
library version), so :func:`load_adapter` can redo the replacement on an
unmodified copy of the base model. One file is written atomically, so a
reader never sees a half-written adapter.
"""

from __future__ import annotations

import json
import os
import pickle
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from safetensors.torch import save as safetensors_bytes
from torch import nn

from .activations import AdaptiveActivation
from .atomic_files import atomic_write
from .errors import CheckpointError, ReplacementError
from .replace import SPEC_FORMAT, reapply_replacement, replacement_spec

__all__ = ["LoadResult", "load_pretrained", "save_adapter", "load_adapter", "ADAPTER_FORMAT"]

ADAPTER_FORMAT = "reactivate-adapter"
_NESTED_KEYS = ("state_dict", "model_state_dict", "model_state", "model", "net", "network",
                "module", "weights", "params", "ema")
_PREFIXES = ("module.", "_orig_mod.")
_SHOWN = 8


@dataclass
class LoadResult:
    """Summary of the tensors that :func:`load_pretrained` loaded.

    Attributes:
        loaded: number of tensors copied into the model.
        missing_adaptive: adaptive parameter keys absent from the checkpoint
            (they keep their start values, which reproduce the original).
        stripped_prefixes: key prefixes removed, such as ``["module."]``.
        location: where the state dict sat inside the checkpoint (``""``
            when the checkpoint is the state dict itself).
    """

    loaded: int
    missing_adaptive: list[str] = field(default_factory=list)
    stripped_prefixes: list[str] = field(default_factory=list)
    location: str = ""


def _show(keys: list[str]) -> str:
    shown = ", ".join(keys[:_SHOWN])
    return shown + (f" and {len(keys) - _SHOWN} more" if len(keys) > _SHOWN else "")


def _is_state_dict(value: Any) -> bool:
    return isinstance(value, Mapping) and bool(value) and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in value.items())


def _read_file(path: Path) -> Any:
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist or is not a file")
    with open(path, "rb") as handle:
        head = handle.read(9)
    if len(head) == 9 and head[8:9] == b"{":
        try:
            return load_file(str(path), device="cpu")
        except (SafetensorError, OSError, ValueError) as exc:
            raise CheckpointError(f"{str(path)!r} is not a readable safetensors file ({exc})") from None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise CheckpointError(
            f"{str(path)!r} contains pickled objects other than tensors and plain containers, which were "
            f"rejected because unpickling them can run code ({first[:160]}); re-save it as a state dict") from None
    except Exception as exc:  # torch.load raises KeyError, RuntimeError, EOFError... on foreign bytes
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"{str(path)!r} is not a PyTorch checkpoint or is truncated ({first[:160]})") from None


def _find_state_dict(checkpoint: Any, location: str = "") -> tuple[dict[str, torch.Tensor], str]:
    if _is_state_dict(checkpoint):
        return dict(checkpoint), location
    if isinstance(checkpoint, Mapping):
        for key in _NESTED_KEYS:
            if key in checkpoint:
                try:
                    return _find_state_dict(checkpoint[key], f"{location}[{key!r}]")
                except CheckpointError:
                    continue
        keys = ", ".join(repr(k) for k in list(checkpoint)[:_SHOWN])
        raise CheckpointError(
            f"found no state dict in the checkpoint{' at ' + location if location else ''}: its keys are "
            f"{keys}; pass the state dict itself, or one under 'state_dict', 'model_state_dict' or 'model'")
    raise CheckpointError(f"the checkpoint is a {type(checkpoint).__name__}, not a state dict or a dict holding one")


def _strip_prefixes(state: dict[str, torch.Tensor], model_keys: set[str]) -> tuple[dict[str, torch.Tensor], list[str]]:
    stripped = []
    changed = True
    while changed:
        changed = False
        for prefix in _PREFIXES:
            if state and all(k.startswith(prefix) for k in state) and not any(k.startswith(prefix) for k in model_keys):
                state = {k[len(prefix):]: v for k, v in state.items()}
                stripped.append(prefix)
                changed = True
    return state, stripped


def _adaptive_keys(model: nn.Module) -> set[str]:
    keys = set()
    for prefix, module in model.named_modules(remove_duplicate=False):
        if isinstance(module, AdaptiveActivation):
            for name in module.state_dict():
                keys.add(f"{prefix}.{name}" if prefix else name)
    return keys


def load_pretrained(model: nn.Module, source: str | os.PathLike | Mapping[str, Any]) -> LoadResult:
    """Load pre-trained weights into ``model``, checking every key first.

    Accepts a state dict, a checkpoint dict holding one (under
    ``'state_dict'``, ``'model_state_dict'``, ``'model'``, ``'net'`` and
    similar keys, also nested), keys prefixed by ``DataParallel``/DDP
    (``module.``) or ``torch.compile`` (``_orig_mod.``), a ``torch.save``
    file (read with ``torch.load(weights_only=True)``) or a ``.safetensors``
    file. Only adaptive activation parameters may be missing: they keep the
    start values that reproduce the original activations. The model is
    changed only after every check has passed.

    Args:
        model: the model, usually after :func:`reactivate.replace_activations`.
        source: a path or an in-memory checkpoint.

    Returns:
        A :class:`LoadResult`.

    Raises:
        CheckpointError: for a missing, truncated or non-checkpoint file, a
            file containing pickled code, and for any missing (non-adaptive),
            unexpected or wrongly shaped tensor. The message names the keys.

    Example:
        >>> model = torchvision.models.resnet18()  # doctest: +SKIP
        >>> replace_activations(model, "exact")  # doctest: +SKIP
        >>> load_pretrained(model, "resnet18.pth").missing_adaptive[:1]  # doctest: +SKIP
        ['relu.beta']

    .. note::
        A missing ``num_batches_tracked`` buffer (checkpoints saved before
        PyTorch 0.4.1) is accepted; the model keeps its own value.
    """
    if isinstance(source, Mapping):
        checkpoint = source
    elif isinstance(source, (str, os.PathLike)):
        checkpoint = _read_file(Path(source))
    else:
        raise CheckpointError(
            f"source must be a path or a state dict, got {type(source).__name__}")
    state, location = _find_state_dict(checkpoint)
    expected = model.state_dict()
    state, stripped = _strip_prefixes(state, set(expected))
    adaptive = _adaptive_keys(model)

    missing = [k for k in expected if k not in state]
    missing_adaptive = [k for k in missing if k in adaptive]
    missing_other = [k for k in missing if k not in adaptive and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in expected]
    wrong_shape = [f"{k} (checkpoint {tuple(state[k].shape)}, model {tuple(expected[k].shape)})"
                   for k in state if k in expected and state[k].shape != expected[k].shape]
    problems = []
    if missing_other:
        problems.append(f"missing keys: {_show(missing_other)}")
    if unexpected:
        problems.append(f"unexpected keys: {_show(unexpected)}")
    if wrong_shape:
        problems.append(f"wrong shapes: {_show(wrong_shape)}")
    if problems:
        raise CheckpointError(
            "the checkpoint does not fit the model: " + "; ".join(problems)
            + ". Build the same architecture the checkpoint was saved from (only adaptive activation "
            "parameters may be missing)")
    model.load_state_dict(state, strict=False)
    return LoadResult(loaded=len(state), missing_adaptive=missing_adaptive, stripped_prefixes=stripped,
                      location=location)


def _adaptive_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    tensors: dict[str, torch.Tensor] = {}
    for prefix, module in model.named_modules():
        if isinstance(module, AdaptiveActivation):
            for name, tensor in module.state_dict(keep_vars=True).items():
                tensors[f"{prefix}.{name}" if prefix else name] = tensor
    return tensors


def save_adapter(model: nn.Module, path: str | os.PathLike) -> Path:
    """Save only the adaptive activation parameters and the replacement description.

    The file is one safetensors file (the suffix ``.safetensors`` is added
    when missing): tensors under the model's own key names, and metadata
    ``{"format": "reactivate-adapter", "spec": <replacement_spec JSON>}``. It
    is written to a temporary file in the same folder and then renamed, so a
    failed save never leaves a partial file.

    Args:
        model: a model changed by :func:`reactivate.replace_activations`.
        path: the file to write.

    Returns:
        The path written.

    Raises:
        ReplacementError: when the model has no replaced activations.

    Example:
        >>> save_adapter(model, "run/adapter.safetensors")  # doctest: +SKIP
        PosixPath('run/adapter.safetensors')
    """
    spec = replacement_spec(model)
    path = Path(path)
    if path.suffix != ".safetensors":
        path = path.with_name(path.name + ".safetensors")
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in _adaptive_tensors(model).items()}
    metadata = {"format": ADAPTER_FORMAT, "spec": json.dumps(spec)}
    content = safetensors_bytes(tensors, metadata=metadata)
    return atomic_write(path, lambda handle: handle.write(content))


def _read_adapter(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    from safetensors import safe_open

    if not path.is_file():
        raise CheckpointError(f"adapter file {str(path)!r} does not exist")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            metadata = handle.metadata() or {}
            tensors = {k: handle.get_tensor(k) for k in handle.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{str(path)!r} is not a readable safetensors adapter ({exc})") from None
    if metadata.get("format") != ADAPTER_FORMAT or "spec" not in metadata:
        raise CheckpointError(
            f"{str(path)!r} is a safetensors file without reactivate adapter metadata; "
            "write adapters with save_adapter")
    try:
        spec = json.loads(metadata["spec"])
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"the adapter description in {str(path)!r} is not valid JSON ({exc})") from None
    if not isinstance(spec, dict) or spec.get("format") != SPEC_FORMAT:
        raise CheckpointError(f"the adapter description in {str(path)!r} is not a replacement spec")
    return tensors, spec


def _site_configs(spec: Mapping[str, Any]) -> list[tuple[str, Any]]:
    return [(s["name"], s["config"]) for r in spec.get("rounds", []) for s in r.get("sites", [])]


def load_adapter(model: nn.Module, path: str | os.PathLike) -> int:
    """Load an adapter written by :func:`save_adapter` into ``model``.

    On an unmodified copy of the base model the replacement is redone first
    (:func:`reactivate.reapply_replacement`). On a model that already has
    the same replacement only the parameters are loaded. Every check runs
    before any parameter changes.

    Args:
        model: the base model (unmodified, with its pre-trained weights), or
            the same model already replaced in the same way.
        path: the adapter file.

    Returns:
        The number of tensors loaded.

    Raises:
        CheckpointError: when the file is not an adapter, the model's
            replacement differs from the adapter's, or tensors are missing,
            unexpected or wrongly shaped.

    Example:
        >>> base = torchvision.models.resnet18()  # doctest: +SKIP
        >>> load_adapter(base, "run/adapter.safetensors")  # doctest: +SKIP
        34
    """
    path = Path(path)
    tensors, spec = _read_adapter(path)
    try:
        current = replacement_spec(model)
    except ReplacementError:
        current = None
    if current is None:
        try:
            reapply_replacement(model, spec)
        except ReplacementError as exc:
            raise CheckpointError(f"cannot apply adapter {str(path)!r} to this model: {exc}") from None
        undo_on_error = True
    else:
        if _site_configs(current) != _site_configs(spec):
            raise CheckpointError(
                f"the model's replaced activations differ from those in {str(path)!r}; load the adapter "
                "into an unmodified copy of the base model")
        undo_on_error = False
    targets = _adaptive_tensors(model)
    missing = [k for k in targets if k not in tensors]
    unexpected = [k for k in tensors if k not in targets]
    wrong = [f"{k} (file {tuple(tensors[k].shape)}, model {tuple(targets[k].shape)})"
             for k in tensors if k in targets and tensors[k].shape != targets[k].shape]
    if missing or unexpected or wrong:
        if undo_on_error:
            from .replace import restore_activations

            restore_activations(model)
        parts = [f"{label}: {_show(keys)}" for label, keys in
                 (("missing", missing), ("unexpected", unexpected), ("wrong shapes", wrong)) if keys]
        raise CheckpointError(f"adapter {str(path)!r} does not fit the model: " + "; ".join(parts))
    with torch.no_grad():
        for key, tensor in tensors.items():
            targets[key].copy_(tensor)
    return len(tensors)
