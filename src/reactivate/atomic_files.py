"""Atomic file writes: a reader sees the old file or the whole new one, never a part."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import IO, Any, Callable

import torch

__all__ = ["atomic_write", "atomic_save", "atomic_write_text"]


def _new_file_mode() -> int:
    """Return the permissions that a plain ``open()`` would give a new file."""
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write(path: str | os.PathLike, write: Callable[[IO[Any]], Any], *, binary: bool = True) -> Path:
    """Write a file through ``write(file_object)`` so it is never seen half-written.

    The data goes to a temporary file in the same folder, is flushed to disk
    and then renamed over ``path`` with ``os.replace``. On error the temporary
    file is removed, so ``path`` keeps its old content.

    Returns:
        The destination path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp creates the file readable by its owner only.
        os.chmod(temporary, _new_file_mode())
        text_options = {} if binary else {"encoding": "utf-8", "newline": ""}
        with os.fdopen(descriptor, "wb" if binary else "w", **text_options) as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        raise
    return path


def atomic_save(obj: Any, path: str | os.PathLike) -> Path:
    """Save ``obj`` with ``torch.save`` to ``path`` atomically."""
    return atomic_write(path, lambda handle: torch.save(obj, handle))


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` as UTF-8 to ``path`` atomically."""
    return atomic_write(path, lambda handle: handle.write(text), binary=False)
