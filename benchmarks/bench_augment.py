"""Benchmark batched RandomFlipTranslate against per-image torchvision transforms.

Measures images per second for one pass over ``--images`` random CIFAR-sized
images (3x32x32, float32 in [0, 1]) in batches of ``--batch-size``:

* ``RandomFlipTranslate`` on batch slices of the whole-tensor dataset, the
  way ``reactivate`` trains;
* torchvision ``RandomHorizontalFlip`` + ``RandomAffine(translate=(0.1, 0.1))``
  and ``RandomHorizontalFlip`` + ``RandomCrop(32, padding=3)``, applied image
  by image in a ``DataLoader`` with 0 and with 4 worker processes. The
  reference implementation published with Bodyanskiy and Kostiuk's paper
  "Using Adaptive Activation Functions in Pre-Trained Artificial Neural
  Network Models" (ICST 2023) augments this way, with 4 workers.

Each case reports the median of ``--repeats`` timed passes after one
untimed pass. DataLoader workers are persistent, so worker start-up is not
timed (this favours the per-image pipeline). Speed-ups are ratios within one
run, which cancels most of the noise of a shared machine.

Run: ``python benchmarks/bench_augment.py [--output benchmarks/results/augment.md]``
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from reactivate.data import RandomFlipTranslate

from benchmark_support import emit_report, machine_description, sync

__all__ = ["main"]


class PerImageDataset(Dataset):
    """Images that a torchvision transform augments one at a time."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform) -> None:
        self.images = images
        self.labels = labels
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        return self.transform(self.images[index]), self.labels[index]



def time_batched(images: torch.Tensor, batch_size: int, repeats: int) -> list[float]:
    """Time passes of RandomFlipTranslate over ``images`` in slices of ``batch_size``."""
    augment = RandomFlipTranslate()
    generator = torch.Generator(device=images.device).manual_seed(0)
    times = []
    for i in range(repeats + 1):
        sync(images.device)
        start = time.perf_counter()
        for begin in range(0, len(images), batch_size):
            augment(images[begin : begin + batch_size], generator=generator)
        sync(images.device)
        if i > 0:
            times.append(time.perf_counter() - start)
    return times


def time_loader(dataset: Dataset, batch_size: int, workers: int, repeats: int) -> list[float]:
    """Time passes over a DataLoader that augments image by image."""
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=True,
        num_workers=workers,
        persistent_workers=workers > 0,
        generator=torch.Generator().manual_seed(0),
    )
    times = []
    for i in range(repeats + 1):
        start = time.perf_counter()
        for _batch in loader:
            pass
        if i > 0:
            times.append(time.perf_counter() - start)
    return times




def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2048, help="images per timed pass (default 2048)")
    parser.add_argument("--batch-size", type=int, default=64, help="batch size (default 64)")
    parser.add_argument("--repeats", type=int, default=20, help="timed passes per case (default 20)")
    parser.add_argument("--workers", default="0,4", help="DataLoader worker counts, comma-separated (default 0,4)")
    parser.add_argument("--device", default="cpu", help="device of the batched augmentation (default cpu)")
    parser.add_argument(
        "--threads", type=int, help="torch intra-op threads (default: torch's choice); 1 is steadier on a busy machine"
    )
    parser.add_argument("--output", type=Path, help="also write the Markdown report to this file")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    torch.manual_seed(0)
    device = torch.device(args.device)
    images = torch.randint(0, 256, (args.images, 3, 32, 32), dtype=torch.uint8).float().div_(255)
    labels = torch.randint(0, 10, (args.images,))
    pipelines = {
        "flip + RandomAffine(translate=0.1)": transforms.Compose(
            [transforms.RandomHorizontalFlip(), transforms.RandomAffine(degrees=0, translate=(0.1, 0.1))]
        ),
        "flip + RandomCrop(32, padding=3)": transforms.Compose(
            [transforms.RandomHorizontalFlip(), transforms.RandomCrop(32, padding=3)]
        ),
    }

    rows = []
    batched = statistics.median(time_batched(images.to(device), args.batch_size, args.repeats))
    rows.append((f"RandomFlipTranslate, batched on {device}", "-", batched))
    for name, transform in pipelines.items():
        dataset = PerImageDataset(images, labels, transform)
        for workers in (int(w) for w in args.workers.split(",")):
            seconds = statistics.median(time_loader(dataset, args.batch_size, workers, args.repeats))
            rows.append((f"torchvision {name}, per image", str(workers), seconds))
            print(f"done: {name}, {workers} workers", file=sys.stderr, flush=True)

    lines = [
        "# Augmentation throughput",
        "",
        f"Machine: {machine_description()}.",
        "",
        f"Command: `python benchmarks/{Path(__file__).name} {shlex.join(argv if argv is not None else sys.argv[1:])}`",
        "",
        f"{args.images} random 3x32x32 float32 images per pass, batches of {args.batch_size}, "
        f"median of {args.repeats} passes after one untimed pass; persistent DataLoader workers.",
        "",
        "| pipeline | DataLoader workers | ms per pass | images/s | batched speed-up |",
        "|---|---|---|---|---|",
    ]
    for name, workers, seconds in rows:
        lines.append(
            f"| {name} | {workers} | {1e3 * seconds:.1f} | {args.images / seconds:,.0f} | {seconds / batched:.1f}x |"
        )
    emit_report(lines, args.output)


if __name__ == "__main__":
    main()
