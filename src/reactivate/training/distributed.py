"""Process-group setup for ``torchrun`` and the few collectives training uses.

Under ``torchrun`` every process reads its rank from the environment variables
``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``.
:func:`setup_distributed` joins the process group (NCCL when CUDA is available,
Gloo otherwise); outside ``torchrun`` it returns a single-process
:class:`DistInfo` and initializes nothing. The helpers below are no-ops when no
process group is initialized, so training code calls them unconditionally.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from ..errors import ReactivateError

__all__ = [
    "DistInfo",
    "setup_distributed",
    "cleanup_distributed",
    "current_dist_info",
    "launched_by_torchrun",
    "all_reduce_sum",
    "barrier",
    "broadcast_object",
    "gather_objects",
]


@dataclass(frozen=True)
class DistInfo:
    """Position of this process in a (possibly single-process) run.

    Args:
        rank (int): global rank, 0 for a single process.
        world_size (int): number of processes.
        local_rank (int): rank on this node; selects the CUDA device.
        device (torch.device): device this process trains on.
        backend (str | None): ``"nccl"``, ``"gloo"``, or None when no process
            group is initialized.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    backend: str | None = None

    @property
    def is_main(self) -> bool:
        """True on rank 0, the process that writes logs and files."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """True when more than one process takes part."""
        return self.world_size > 1


def _env_int(name: str) -> int:
    value = os.environ[name]
    try:
        return int(value)
    except ValueError:
        raise ReactivateError(f"environment variable {name} must be an integer, got {value!r}") from None


def launched_by_torchrun() -> bool:
    """Return True when the torchrun environment variables are set."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def _default_device(local_rank: int) -> torch.device:
    if torch.cuda.is_available():
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    return torch.device("cpu")


def setup_distributed(backend: str | None = None, timeout_s: float = 1800.0) -> DistInfo:
    """Join the ``torchrun`` process group, or describe a single process.

    Under ``torchrun`` (``RANK`` and ``WORLD_SIZE`` set) with more than one
    process, this initializes the default process group from the environment,
    with NCCL when CUDA is available and Gloo otherwise, and selects
    ``cuda:LOCAL_RANK`` as the current CUDA device. A second call returns the
    existing group's description.

    Args:
        backend (str, optional): process-group backend; None picks NCCL on
            CUDA and Gloo on CPU. Default: None.
        timeout_s (float): collective timeout in seconds. Default: 1800.

    Returns:
        DistInfo: rank, world size, local rank, device and backend.

    Example::

        info = setup_distributed()
        try:
            fit(model, data, config, run_dir)
        finally:
            cleanup_distributed()
    """
    if dist.is_available() and dist.is_initialized():
        return current_dist_info()
    if not launched_by_torchrun():
        return DistInfo(device=_default_device(0))

    rank = _env_int("RANK")
    world_size = _env_int("WORLD_SIZE")
    local_rank = _env_int("LOCAL_RANK") if "LOCAL_RANK" in os.environ else 0
    device = _default_device(local_rank)
    if world_size <= 1:
        return DistInfo(rank=rank, world_size=1, local_rank=local_rank, device=device)
    for name in ("MASTER_ADDR", "MASTER_PORT"):
        if name not in os.environ:
            raise ReactivateError(f"environment variable {name} is missing; start the program with torchrun")

    if backend is None:
        # NOTE: the tests run Gloo on CPU only; this NCCL branch has not run on GPUs here.
        backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(
        backend=backend,
        rank=rank,
        world_size=world_size,
        timeout=datetime.timedelta(seconds=timeout_s),
    )
    return DistInfo(rank=rank, world_size=world_size, local_rank=local_rank, device=device, backend=backend)


def cleanup_distributed() -> None:
    """Destroy the default process group if one is initialized."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def current_dist_info() -> DistInfo:
    """Describe this process from the initialized process group, if any."""
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if not (dist.is_available() and dist.is_initialized()):
        return DistInfo(local_rank=local_rank, device=_default_device(local_rank))
    backend = str(dist.get_backend())
    if backend == "nccl" and torch.cuda.is_available():
        device = torch.device("cuda", torch.cuda.current_device())
    else:
        device = _default_device(local_rank)
    return DistInfo(
        rank=dist.get_rank(),
        world_size=dist.get_world_size(),
        local_rank=local_rank,
        device=device,
        backend=backend,
    )


def _active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum ``tensor`` over all processes in place and return it."""
    if _active():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def barrier() -> None:
    """Wait until every process reaches this point."""
    if _active():
        dist.barrier()


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Return rank ``src``'s ``obj`` on every process (pickled, so trusted data only)."""
    if not _active():
        return obj
    holder = [obj]
    dist.broadcast_object_list(holder, src=src)
    return holder[0]


def gather_objects(obj: Any) -> list[Any]:
    """Return every process's ``obj`` in rank order, on every process."""
    if not _active():
        return [obj]
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, obj)
    return gathered
