"""Worker that tests/test_distributed_training.py starts with torchrun (2 CPU processes, Gloo).

Usage: ddp_worker.py DATA_FILE OUT_DIR STAGE, where STAGE is

* ``first``: a DDP run to compare with one process, an activation-only
  fine-tuning run that records frozen tensors on every rank, a 3-epoch
  reference run and a 1-epoch run of the same configuration;
* ``resume``: resumes the 1-epoch run to 3 epochs in a fresh launch.

Rank 0 writes the results as ``torch.save`` files into OUT_DIR.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.distributed as dist

from reactivate.training import TrainConfig, cleanup_distributed, fit, setup_distributed
from training_helpers import load_splits, make_tiny

# Shared by this worker and the test that compares against one process.
MATCH_CONFIG = dict(epochs=2, batch_size=8, test_batch_size=25, lr=3e-3, augment=False, progress=False)
RESUME_CONFIG = dict(epochs=3, batch_size=8, test_batch_size=25, lr=3e-3, augment=True, progress=False)


def gather_state(model: torch.nn.Module) -> list[dict[str, torch.Tensor]]:
    states: list = [None] * dist.get_world_size()
    dist.all_gather_object(states, {name: tensor.clone() for name, tensor in model.state_dict().items()})
    return states


def first_stage(data, out: Path, rank: int) -> None:
    # DDP against one process: only rank 0 may write, so each rank gets its own folder.
    model = make_tiny()
    result = fit(model, data, TrainConfig(**MATCH_CONFIG), out / "match" / f"rank{rank}")
    states = gather_state(model)
    if rank == 0:
        torch.save({"states": states, "history": [r.to_dict() for r in result.history]}, out / "match.pt")

    # Activation-only fine-tuning keeps every frozen tensor identical on every rank.
    model = make_tiny(seed=1, adaptive=True)
    start = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    config = TrainConfig(**{**MATCH_CONFIG, "trainable": "activations", "lr": 1e-2, "epoch_offset": 5})
    result = fit(model, data, config, out / "finetune")
    states = gather_state(model)
    trainable = sorted(name for name, parameter in model.named_parameters() if parameter.requires_grad)
    if rank == 0:
        torch.save(
            {"start": start, "states": states, "trainable": trainable, "epochs": [r.epoch for r in result.history]},
            out / "finetune.pt",
        )

    # Uninterrupted reference and the first epoch of an interrupted run, with
    # dropout and augmentation so every process's random generators matter.
    model = make_tiny(adaptive=True, dropout=0.3)
    result = fit(model, data, TrainConfig(**RESUME_CONFIG), out / "full")
    states = gather_state(model)
    if rank == 0:
        torch.save({"states": states, "history": [r.to_dict() for r in result.history]}, out / "full.pt")
    fit(make_tiny(adaptive=True, dropout=0.3), data, TrainConfig(**{**RESUME_CONFIG, "epochs": 1}), out / "cut")


def resume_stage(data, out: Path, rank: int) -> None:
    torch.manual_seed(1000 + rank)
    model = make_tiny(seed=9, adaptive=True, dropout=0.3)
    result = fit(model, data, TrainConfig(**RESUME_CONFIG), out / "cut")
    states = gather_state(model)
    if rank == 0:
        torch.save({"states": states, "history": [r.to_dict() for r in result.history]}, out / "resumed.pt")


def main() -> None:
    data_file, out, stage = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    torch.set_num_threads(1)
    info = setup_distributed()
    assert info.world_size == 2, info
    assert info.backend == "gloo", info
    try:
        data = load_splits(data_file)
        if stage == "first":
            first_stage(data, out, info.rank)
        elif stage == "resume":
            resume_stage(data, out, info.rank)
        else:
            raise SystemExit(f"unknown stage {stage!r}")
    finally:
        cleanup_distributed()


if __name__ == "__main__":
    main()
