"""Keep freed memory inside the process during CPU training on Linux.

PyTorch's CPU tensors come from the C library's ``malloc``. With glibc's
default settings, the memory a training step frees at the top of the heap
goes back to the operating system, and the next step requests it again, so
every step pays page faults and the zeroing of fresh pages. Which steps
suffer depends on the order of allocations: in
``benchmarks/bench_train_step.py`` a KerasNet step with AHAF at every site
took thousands of such faults per step and ran 13-15% slower than the ReLU
reference, and about 1% slower once glibc kept a pad of freed memory.
Setting that pad turns off glibc's adaptive mmap threshold, so the
threshold is fixed at 32 MiB as well; otherwise every block above 128 KiB
would be mapped and faulted in afresh.

This is written by hand with :mod:`ctypes` because it is one call to
glibc's ``mallopt``, which no Python package exposes; replacing the
allocator (jemalloc or tcmalloc through ``LD_PRELOAD``) would have to
happen before Python starts.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

__all__ = ["DEFAULT_PAD_MIB", "ENV_VAR", "keep_freed_memory"]

DEFAULT_PAD_MIB = 256
ENV_VAR = "REACTIVATE_KEEP_FREED_MIB"

# glibc's malloc.h: #define M_TOP_PAD -2, #define M_MMAP_THRESHOLD -3
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3
# The largest mmap threshold glibc accepts on 64-bit systems.
_MMAP_THRESHOLD_MAX = 32 * 2**20
_PAD_MAX_MIB = 2047


def keep_freed_memory(pad_mib: int | None = None) -> bool:
    """Ask glibc to keep up to ``pad_mib`` MiB of freed memory for reuse.

    Two settings: a pad of freed memory kept at the top of the heap, and
    a fixed mmap threshold of 32 MiB. Blocks up to that size then come from
    the heap and are reused instead of being mapped afresh. The threshold
    must be set because setting the pad alone turns off glibc's adaptive
    threshold. The process may
    then hold up to ``pad_mib`` MiB more resident memory than it uses. The
    settings apply to the whole process. The ``train``, ``finetune`` and
    ``reproduce`` commands call this once at start.

    Args:
        pad_mib: MiB to keep, at most 2047. Default: the environment
            variable ``REACTIVATE_KEEP_FREED_MIB`` if set and not empty,
            else 256; 0 leaves ``malloc`` as it is.

    Returns:
        True when the settings were applied; False on other systems than
        Linux with glibc, or when ``pad_mib`` is 0.

    Raises:
        ValueError: ``pad_mib`` or the environment variable is not a whole
            number from 0 to 2047.
    """
    if pad_mib is None:
        text = os.environ.get(ENV_VAR, "").strip()
        if not text:
            pad_mib = DEFAULT_PAD_MIB
        elif text.isascii() and text.isdigit() and int(text) <= _PAD_MAX_MIB:
            pad_mib = int(text)
        else:
            raise ValueError(
                f"{ENV_VAR}={text!r} is invalid; give a whole number of MiB from 0 to {_PAD_MAX_MIB} "
                "such as 256, or 0 to turn this off"
            )
    if isinstance(pad_mib, bool) or not isinstance(pad_mib, int) or not 0 <= pad_mib <= _PAD_MAX_MIB:
        raise ValueError(
            f"pad_mib={pad_mib!r} is invalid; give a whole number of MiB from 0 to {_PAD_MAX_MIB} such as 256, or 0"
        )
    if pad_mib == 0 or not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c") or "libc.so.6"
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
        gnu_get_libc_version = libc.gnu_get_libc_version
    except (OSError, AttributeError):
        # Not glibc (musl has no gnu_get_libc_version): nothing to tune.
        return False
    del gnu_get_libc_version
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    pad_set = mallopt(_M_TOP_PAD, pad_mib * 2**20) == 1
    threshold_set = mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX) == 1
    return pad_set and threshold_set
