"""Build and call the fused C++ CPU kernels of the adaptive activations.

The kernels in ``csrc/activations.cpp`` are compiled on first use with
:func:`torch.utils.cpp_extension.load` (gcc or clang, and the ``ninja``
build tool). The build is cached in torch's extension folder
(``TORCH_EXTENSIONS_DIR``, default ``~/.cache/torch_extensions``), so later
processes load it in well under a second. A cold build took 34 s on a
2-core machine with gcc 12.

Each op is one fused OpenMP pass for forward and one for backward (input
gradient and parameter gradients together), wrapped in a C++ autograd
function that saves only the input and the parameters. They accept float32
and float64 CPU inputs whose parameters have the input's dtype;
:func:`supports` checks whether a call qualifies.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import threading
from pathlib import Path

import torch

__all__ = ["NativeBuildError", "SOURCE", "load", "loaded_ops", "is_loaded", "supports", "ahaf", "leaf", "fneuron"]

SOURCE = Path(__file__).with_name("csrc") / "activations.cpp"

_lock = threading.Lock()
_ops = None
_error: Exception | None = None


class NativeBuildError(RuntimeError):
    """Raised when the native kernels cannot be compiled or loaded."""


def _compiler_flags() -> tuple[str, list[str]]:
    """Return the extension name and the compiler flags for this CPU.

    The vector instruction set comes from torch's own CPU detection. The
    extension name contains it and the torch version, so one cache folder
    shared by different CPUs or torch installs keeps a build for each
    instead of loading one built against other headers.
    """
    capability = torch.backends.cpu.get_cpu_capability()
    flags = ["-O3", "-fopenmp", "-fno-math-errno", "-fno-trapping-math"]
    if capability in ("AVX2", "AVX512"):
        flags += ["-mavx2", "-mfma"]
        suffix = "avx2"
    else:
        suffix = "default"
    version = re.sub(r"\W", "_", torch.__version__)
    return f"reactivate_native_{suffix}_torch{version}", flags


def _put_ninja_on_path() -> None:
    """Append the folder of the ``ninja`` wheel to PATH when no ninja is on it.

    torch looks for the ``ninja`` command on PATH, which misses the wheel's
    copy when Python runs from a virtual environment that is not activated.
    """
    if shutil.which("ninja") is not None:
        return
    try:
        import ninja
    except ImportError:
        return
    os.environ["PATH"] = os.pathsep.join([os.environ.get("PATH", ""), ninja.BIN_DIR])


def load(verbose: bool = False):
    """Compile (first call per machine) and load the kernels; return ``torch.ops.reactivate_native``.

    Args:
        verbose: print the compiler's commands and output. Default: False.

    Raises:
        NativeBuildError: the compiler, ``ninja`` or the loader failed. A
            failure is remembered, so later calls raise at once.
    """
    global _ops, _error
    if _ops is not None:
        return _ops
    with _lock:
        if _ops is not None:
            return _ops
        if _error is not None:
            raise NativeBuildError(str(_error)) from _error
        # Imported here because cpp_extension pulls in setuptools, which
        # most programs never need.
        # On a machine without CUDA, importing cpp_extension logs a warning
        # about CUDA_HOME that does not concern these CPU kernels.
        cpp_logger = logging.getLogger("torch.utils.cpp_extension")
        previous_level = cpp_logger.level
        cpp_logger.setLevel(logging.ERROR)
        try:
            from torch.utils import cpp_extension
        finally:
            cpp_logger.setLevel(previous_level)

        name, flags = _compiler_flags()
        _put_ninja_on_path()
        try:
            cpp_extension.load(
                name=name,
                sources=[str(SOURCE)],
                extra_cflags=flags,
                is_python_module=False,
                verbose=verbose,
            )
        except (OSError, RuntimeError, ImportError, ValueError) as error:
            _error = error
            folder = os.environ.get("TORCH_EXTENSIONS_DIR", "~/.cache/torch_extensions")
            raise NativeBuildError(
                f"building the native activation kernels failed ({type(error).__name__}: {error}); "
                f"install a C++ compiler and ninja, or check write access to {folder}"
            ) from error
        _ops = torch.ops.reactivate_native
        return _ops


def loaded_ops():
    """Return ``torch.ops.reactivate_native`` when the kernels are loaded in this process, else None."""
    return _ops


def is_loaded() -> bool:
    """Return True when the kernels are already compiled and loaded in this process."""
    return _ops is not None


def supports(x: torch.Tensor, *params: torch.Tensor) -> bool:
    """Check whether the native kernels can run on ``x`` with these parameters.

    True for a float32 or float64 CPU input whose parameters have the same
    dtype. Half-precision inputs are left to the eager path, which computes
    them in float32. Parameters on another device are not checked here,
    because this runs on every forward call. The C++ op rejects them with a
    clear message.
    """
    dtype = x.dtype
    if (dtype is not torch.float32 and dtype is not torch.float64) or not x.is_cpu:
        return False
    for p in params:
        if p.dtype is not dtype:
            return False
    return True


def ahaf(x: torch.Tensor, beta: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
    """Apply AHAF, ``beta * x * sigmoid(gamma * x)``, with the native kernels.

    ``beta`` and ``gamma`` are viewed to broadcast against ``x`` as the
    modules do: shape ``()``, ``(C, 1, ..., 1)`` or ``x.shape[1:]``.
    """
    return load().ahaf(x, beta, gamma)


def leaf(x: torch.Tensor, p1: torch.Tensor, p2: torch.Tensor, p3: torch.Tensor, p4: torch.Tensor) -> torch.Tensor:
    """Apply LEAF, ``(p1 x + p2) sigmoid(p3 x) + p4``, with the native kernels."""
    return load().leaf(x, p1, p2, p3, p4)


def fneuron(x: torch.Tensor, weight: torch.Tensor, low: float, inv_step: float) -> torch.Tensor:
    """Apply the F-neuron with the native kernels.

    ``weight`` has the membership functions last: ``(m,)``, ``(C, 1, ...,
    1, m)`` or ``(*x.shape[1:], m)``; ``low`` is the first centre and
    ``inv_step`` the inverse distance between centres.
    """
    return load().fneuron(x, weight, float(low), float(inv_step))
