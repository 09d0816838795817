"""Whole-model files: weights plus what is needed to rebuild the architecture.

A model file stores the state dict, the model's ``model_config`` (the base
architecture, rebuilt with :func:`reactivate.models.build_model`) and, for a
model whose activations were replaced, ``reactivate.replacement_spec(model)``,
so :func:`load_model` rebuilds the base network, redoes the replacement and
then loads the weights strictly.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import nn

from .. import __version__
from ..activations import AdaptiveActivation
from ..errors import ReactivateError, ReplacementError
from ..replace import reapply_replacement, replacement_spec
from .checkpoint import atomic_save, load_versioned
from .errors import CheckpointError

__all__ = ["MODEL_FILE_FORMAT", "save_model", "load_model", "load_model_weights", "model_file_payload"]

MODEL_FILE_FORMAT = "reactivate-model"
MODEL_FILE_VERSION = 1


def _unwrap(model: nn.Module) -> nn.Module:
    # DistributedDataParallel and DataParallel keep the real model in `.module`.
    return model.module if isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)) else model


def _check_plain(value: Any, where: str) -> None:
    """Reject values that ``torch.load(weights_only=True)`` could not read back."""
    if value is None or isinstance(value, (bool, int, float, str, torch.Tensor)):
        return
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _check_plain(item, f"{where}[{index}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ReactivateError(f"{where} has a non-string key {key!r}; use string keys")
            _check_plain(item, f"{where}[{key!r}]")
        return
    raise ReactivateError(
        f"{where} has type {type(value).__name__}; model files hold only tensors, numbers, strings, "
        "None, lists and dicts"
    )


def _replacement_spec(model: nn.Module) -> dict[str, Any] | None:
    if not any(isinstance(module, AdaptiveActivation) for module in model.modules()):
        return None
    try:
        return replacement_spec(model)
    except ReplacementError:
        # Adaptive activations built into the architecture itself, which
        # model_config already describes, are not a replacement.
        return None


def save_model(path: str | os.PathLike, model: nn.Module, extra: dict[str, Any] | None = None) -> None:
    """Save a model's weights and architecture to one file, atomically.

    Args:
        path: destination file, conventionally ``*.pt``.
        model (nn.Module): a model with a ``model_config`` dict (every network
            of :mod:`reactivate.models` has one), possibly with replaced
            activations; a DistributedDataParallel wrapper is unwrapped.
        extra (dict, optional): metadata stored beside the weights (tensors,
            numbers, strings, None, lists and dicts only). Default: None.

    Raises:
        ReactivateError: the model has no ``model_config`` or ``extra`` contains a
            value that a ``weights_only`` load cannot read.

    Example::

        >>> save_model("best.pt", model, extra={"epoch": 96, "accuracy": 0.8241})
        >>> model, meta = load_model("best.pt")
    """
    model = _unwrap(model)
    if isinstance(path, nn.Module) and isinstance(model, (str, os.PathLike)):
        raise ReactivateError("save_model takes the path first: call save_model(path, model)")
    if not isinstance(getattr(model, "model_config", None), dict):
        raise ReactivateError(
            f"{type(model).__name__} has no model_config dict, so its architecture cannot be rebuilt; "
            "build it from reactivate.models or save model.state_dict() with torch.save"
        )
    atomic_save(model_file_payload(model, extra), path)


def model_file_payload(model: nn.Module, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Build the dict that :func:`save_model` writes.

    A model without a ``model_config`` gets ``None`` there: its file loads
    only with :func:`load_model_weights` into a model built by the caller.
    """
    model = _unwrap(model)
    model_config = getattr(model, "model_config", None)
    model_config = model_config if isinstance(model_config, dict) else None
    extra = dict(extra or {})
    _check_plain(extra, "extra")
    _check_plain(model_config, "model_config")
    return {
        "format": MODEL_FILE_FORMAT,
        "version": MODEL_FILE_VERSION,
        "reactivate_version": __version__,
        "torch_version": str(torch.__version__),
        "model_config": model_config,
        "replacement_spec": _replacement_spec(model),
        "state_dict": {name: tensor.detach() for name, tensor in model.state_dict().items()},
        "extra": extra,
    }


def _read_model_file(path: str | os.PathLike, map_location: Any) -> dict[str, Any]:
    return load_versioned(
        path,
        kind="model file",
        file_format=MODEL_FILE_FORMAT,
        version=MODEL_FILE_VERSION,
        map_location=map_location,
        hint="; write one with save_model",
    )


def _load_state_strictly(model: nn.Module, state_dict: dict[str, torch.Tensor], path: str | os.PathLike) -> None:
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} key(s) such as {', '.join(missing[:3])}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected key(s) such as {', '.join(unexpected[:3])}")
        raise CheckpointError(
            f"weights in {str(path)!r} do not fit the model ({'; '.join(parts)}); "
            "the file was saved from a different architecture"
        )
    for name, tensor in state_dict.items():
        if tuple(tensor.shape) != tuple(expected[name].shape):
            raise CheckpointError(
                f"weights in {str(path)!r} do not fit the model: {name} has shape {tuple(tensor.shape)} "
                f"in the file but {tuple(expected[name].shape)} in the model"
            )
    model.load_state_dict(state_dict, strict=True)


def _meta(data: dict[str, Any]) -> dict[str, Any]:
    return {
        "model_config": data["model_config"],
        "replacement_spec": data.get("replacement_spec"),
        "extra": data.get("extra", {}),
        "reactivate_version": data.get("reactivate_version"),
        "torch_version": data.get("torch_version"),
    }


def load_model(path: str | os.PathLike, map_location: Any = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a model saved by :func:`save_model` and load its weights.

    The base network is built with :func:`reactivate.models.build_model`
    from the stored ``model_config``. When the file contains a replacement spec,
    ``reactivate.reapply_replacement`` redoes the activation replacement;
    then the weights load with ``strict=True``.

    Args:
        path: a file written by :func:`save_model`.
        map_location: device the weights are loaded to, as in
            :func:`torch.load`. Default: ``"cpu"``.

    Returns:
        tuple: ``(model, meta)``, with the model in eval mode on
        ``map_location`` and ``meta`` holding ``model_config``,
        ``replacement_spec``, ``extra``, ``reactivate_version`` and
        ``torch_version``.

    Raises:
        CheckpointError: the file is missing, not a model file, or its weights
            do not fit the rebuilt architecture.
    """
    from ..models import build_model

    data = _read_model_file(path, map_location)
    if data.get("model_config") is None:
        raise CheckpointError(
            f"{str(path)!r} stores weights without an architecture because the model had no model_config; "
            "build the model yourself and call load_model_weights(path, model)"
        )
    try:
        model = build_model(data["model_config"])
    except ValueError as error:  # build_model rejects unknown names and arguments with ValueError
        raise CheckpointError(f"cannot rebuild the model stored in {str(path)!r}: {error}") from None
    spec = data.get("replacement_spec")
    if spec:
        try:
            reapply_replacement(model, spec)
        except ReplacementError as error:
            raise CheckpointError(f"cannot redo the activation replacement stored in {str(path)!r}: {error}") from None
    _load_state_strictly(model, data["state_dict"], path)
    if map_location is not None and not callable(map_location) and not isinstance(map_location, dict):
        model.to(map_location)
    model.eval()
    return model, _meta(data)


def load_model_weights(path: str | os.PathLike, model: nn.Module) -> dict[str, Any]:
    """Load the weights of a model file into an existing model, strictly.

    Use this for a model you built yourself, with the same architecture,
    including any activation replacement, as the saved one.

    Args:
        path: a file written by :func:`save_model`.
        model (nn.Module): the model to load into, in place.

    Returns:
        dict: the file's metadata, as the second value of :func:`load_model`.

    Raises:
        CheckpointError: the file is not a model file or its weights do not
            fit ``model``.
    """
    model = _unwrap(model)
    device = next((parameter.device for parameter in model.parameters()), torch.device("cpu"))
    data = _read_model_file(path, device)
    _load_state_strictly(model, data["state_dict"], path)
    return _meta(data)
