"""Training checkpoints: atomic writes, random-generator states, safe loading.

A checkpoint is a dict of tensors and plain Python values, so it loads with
``torch.load(..., weights_only=True)``. It contains the model and optimizer
states, the number of finished epochs, the history and the best accuracy so
far. It also stores the state of every random generator the run draws from,
one entry per process, so an interrupted run resumes to the same weights as
an uninterrupted one.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..atomic_files import atomic_save, atomic_write, atomic_write_text
from .errors import CheckpointError

__all__ = [
    "CHECKPOINT_FORMAT",
    "atomic_write",
    "atomic_save",
    "atomic_write_text",
    "capture_rng_state",
    "restore_rng_state",
    "save_checkpoint",
    "load_checkpoint",
    "load_versioned",
    "safe_load",
]

CHECKPOINT_FORMAT = "reactivate-training-checkpoint"
CHECKPOINT_VERSION = 1


def safe_load(path: str | os.PathLike, *, kind: str, map_location: Any = "cpu") -> Any:
    """Load a file with ``torch.load(weights_only=True)``, raising one-line errors.

    Args:
        path: file to read.
        kind (str): what the file should be, used in error messages.
        map_location: as in :func:`torch.load`. Default: ``"cpu"``.

    Raises:
        CheckpointError: the file is missing or is not a file ``torch.load``
            can read without running arbitrary code.
    """
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{kind} {str(path)!r} is a folder; give the path of a file")
    if not path.is_file():
        raise CheckpointError(f"{kind} {str(path)!r} not found")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # torch raises several unrelated types for foreign files
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        # A rejected weights_only load states its reason after "WeightsUnpickler
        # error". Its other lines advise weights_only=False, which the CLI
        # never uses, so they are left out.
        reason = type(error).__name__
        for index, line in enumerate(lines):
            if "WeightsUnpickler error" in line:
                after = line.split("WeightsUnpickler error:", 1)[-1].strip()
                reason = after or (lines[index + 1] if index + 1 < len(lines) else reason)
                break
        else:
            plain = [line for line in lines if "weights_only" not in line]
            reason = plain[0] if plain else reason
        raise CheckpointError(
            f"{str(path)!r} is not a readable {kind}: it is not a PyTorch checkpoint, is truncated, "
            f"or holds objects that weights_only loading rejects ({reason})"
        ) from None


def capture_rng_state(
    device: torch.device, generators: dict[str, torch.Generator]
) -> dict[str, Any]:
    """Return this process's random-generator states as tensors and plain values.

    Args:
        device (torch.device): training device; its CUDA generator is included
            when it is a CUDA device.
        generators (dict): named generators of the run (shuffling,
            augmentation).

    Returns:
        dict: ``torch`` (CPU generator), ``cuda`` (or None), ``python``,
        ``numpy`` and one entry per named generator.
    """
    version, keys, position, has_gauss, cached_gaussian = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
        "python": random.getstate(),
        "numpy": {
            "version": str(version),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "position": int(position),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached_gaussian),
        },
        "generators": {name: generator.get_state() for name, generator in generators.items()},
    }
    return state


def restore_rng_state(
    state: dict[str, Any], device: torch.device, generators: dict[str, torch.Generator]
) -> None:
    """Set the global and named generators to a state from :func:`capture_rng_state`."""
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and state.get("cuda") is not None:
        torch.cuda.set_rng_state(state["cuda"], device)
    version, internal_state, gauss_next = state["python"]
    random.setstate((version, tuple(internal_state), gauss_next))
    saved = state["numpy"]
    np.random.set_state(
        (
            saved["version"],
            saved["keys"].numpy().astype(np.uint32),
            saved["position"],
            saved["has_gauss"],
            saved["cached_gaussian"],
        )
    )
    missing = sorted(set(generators) - set(state["generators"]))
    if missing:
        raise CheckpointError(f"checkpoint has no state for the random generator(s) {', '.join(missing)}")
    for name, generator in generators.items():
        generator.set_state(state["generators"][name])


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> None:
    """Write a training checkpoint atomically, adding the format marker."""
    atomic_save({"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, **payload}, path)


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a training checkpoint written by :func:`save_checkpoint`.

    Raises:
        CheckpointError: the file is missing, unreadable, or not a training
            checkpoint of a version this library reads.
    """
    return load_versioned(path, kind="training checkpoint", file_format=CHECKPOINT_FORMAT, version=CHECKPOINT_VERSION)


def load_versioned(
    path: str | os.PathLike,
    *,
    kind: str,
    file_format: str,
    version: int,
    map_location: Any = "cpu",
    hint: str = "",
) -> dict[str, Any]:
    """Load a reactivate file with :func:`safe_load` and check its format tag and version.

    Raises:
        CheckpointError: the file cannot be read, carries another format tag
            (the message ends with ``hint``), or has another version.
    """
    data = safe_load(path, kind=kind, map_location=map_location)
    if not isinstance(data, dict) or data.get("format") != file_format:
        raise CheckpointError(f"{str(path)!r} is not a reactivate {kind}{hint}")
    if data.get("version") != version:
        raise CheckpointError(
            f"{str(path)!r} is a {kind} of format version {data.get('version')!r}; "
            f"this library reads version {version}"
        )
    return data
