"""Benchmark KerasNet training steps with adaptive activations against classic ones.

One step is the training step of Bodyanskiy and Kostiuk, "Using Adaptive
Activation Functions in Pre-Trained Artificial Neural Network Models" (ICST
2023): forward of a batch of 64 random 3x32x32 images in train mode,
cross-entropy, backward and an RMSprop update (lr 1e-4, alpha 0.9, eps 1e-7).
The variants:

* ``relu``: the ReLU reference model;
* ``ahaf``: AHAF at every activation site (the "paper" preset);
* ``tanh``: the Tanh reference model;
* ``fuzzy_ffn``: Tanh in the convolutional part, an F-neuron (m = 18 on
  [-4, 4]) at ``ffn_act``;
* ``ahaf_finetune`` / ``fuzzy_ffn_finetune``: the same models with only the
  activation parameters trainable, the optimizer holding only them;
* ``fuzzy_ffn_forward``: the forward pass alone of the fuzzy FFN model
  under ``torch.no_grad()``, in train mode, the least that any step does.
  Its ratio to the full step is the floor of the fine-tune ratio.

The variants run interleaved in rounds (in a rotated order each round), so
slow drift of a shared machine hits them all alike. Each round times
``--steps`` steps per variant, and each reported ratio is the median over
rounds of that round's ratio.

Run: ``python benchmarks/bench_train_step.py [--output benchmarks/results/train_step.md]``
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

import reactivate
from reactivate.activations import kernels
from reactivate.models import KerasNet
from reactivate.training import keep_freed_memory

from benchmark_support import emit_report, machine_description, sync

__all__ = ["main"]

# (variant, reference it is divided by, label, ratio of the implementation
# published with that paper measured on a 2-core CPU, target of this project;
# None for a row given as context only)
RATIOS = [
    ("ahaf", "relu", "AHAF everywhere vs ReLU reference", 1.35, 1.10),
    ("fuzzy_ffn", "tanh", "fuzzy FFN vs Tanh reference", 1.11, 1.03),
    ("ahaf_finetune", "ahaf", "activation-only fine-tune vs full step, AHAF", 0.72, 0.66),
    ("fuzzy_ffn_finetune", "fuzzy_ffn", "activation-only fine-tune vs full step, fuzzy FFN", 0.47, 0.42),
    ("fuzzy_ffn_forward", "fuzzy_ffn", "forward pass alone vs full step, fuzzy FFN (floor)", None, None),
]


PAPER = "reactivate.replace_activations(preset='paper')"


def build_variant(name: str) -> nn.Module:
    """Build one variant's model."""
    if name == "relu":
        return KerasNet(cnn_activation="relu")
    if name == "tanh":
        return KerasNet(cnn_activation="tanh")
    if name.startswith("ahaf"):
        model = KerasNet(cnn_activation="relu")
        reactivate.replace_activations(model, preset="paper")
        return model
    if name.startswith("fuzzy_ffn"):
        model = KerasNet(cnn_activation="tanh")
        reactivate.replace_activations(model, preset="paper", include=r"ffn_act")
        return model
    raise ValueError(f"unknown variant {name!r}")


NOTES = {
    "relu": "KerasNet('relu')",
    "tanh": "KerasNet('tanh')",
    "ahaf": PAPER,
    "fuzzy_ffn": PAPER + ", include='ffn_act'",
}


def trainable_parameters(model: nn.Module, activations_only: bool) -> list[nn.Parameter]:
    if activations_only:
        reactivate.freeze_except_activations(model)
    return [p for p in model.parameters() if p.requires_grad]


def make_step(name: str, device: torch.device, batch_size: int) -> tuple[Callable[[], None], int]:
    """Return a closure running one training step and the number of trainable values."""
    model = build_variant(name.removesuffix("_forward"))
    model.to(device).train()
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(batch_size, 3, 32, 32, generator=generator).to(device)
    labels = torch.randint(0, 10, (batch_size,), generator=generator).to(device)
    if name.endswith("_forward"):

        def forward() -> None:
            with torch.no_grad():
                model(images)

        return forward, 0
    parameters = trainable_parameters(model, activations_only=name.endswith("_finetune"))
    optimizer = torch.optim.RMSprop(parameters, lr=1e-4, alpha=0.9, eps=1e-7)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(images), labels)
        loss.backward()
        optimizer.step()

    return step, sum(p.numel() for p in parameters)



def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20, help="timed rounds (default 20)")
    parser.add_argument("--warmup-rounds", type=int, default=2, help="untimed rounds first (default 2)")
    parser.add_argument("--steps", type=int, default=3, help="steps per variant per round (default 3)")
    parser.add_argument("--batch-size", type=int, default=64, help="batch size (default 64)")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    parser.add_argument(
        "--threads", type=int, help="torch intra-op threads (default: torch's choice); 1 is steadier on a busy machine"
    )
    parser.add_argument(
        "--kernel-backend", help="backend of the adaptive activation kernels, such as eager or compiled (default: as set)"
    )
    parser.add_argument(
        "--keep-freed-memory",
        action="store_true",
        help="keep freed memory in the process as the train, finetune and reproduce commands do "
        "(reactivate.training.keep_freed_memory)",
    )
    parser.add_argument("--output", type=Path, help="also write the Markdown report to this file")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.kernel_backend is not None:
        kernels.set_backend(args.kernel_backend)
    memory_kept = keep_freed_memory() if args.keep_freed_memory else False

    torch.manual_seed(0)
    device = torch.device(args.device)
    names = ["relu", "ahaf", "tanh", "fuzzy_ffn", "ahaf_finetune", "fuzzy_ffn_finetune", "fuzzy_ffn_forward"]
    notes = {name: NOTES[name.removesuffix("_finetune").removesuffix("_forward")] for name in names}
    steps, trainable = {}, {}
    for name in names:
        steps[name], trainable[name] = make_step(name, device, args.batch_size)

    per_round: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(args.warmup_rounds + args.rounds):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            sync(device)
            start = time.perf_counter()
            for _ in range(args.steps):
                steps[name]()
            sync(device)
            if round_index >= args.warmup_rounds:
                per_round[name].append((time.perf_counter() - start) / args.steps)
        print(f"round {round_index + 1} of {args.warmup_rounds + args.rounds}", file=sys.stderr, flush=True)

    lines = [
        "# KerasNet training-step cost",
        "",
        f"Machine: {machine_description()}, device {device}, activation kernels: {kernels.get_backend()}, "
        f"freed memory kept by malloc: {'yes' if memory_kept else 'no (glibc default)'}.",
        "",
        f"Command: `python benchmarks/{Path(__file__).name} {shlex.join(argv if argv is not None else sys.argv[1:])}`",
        "",
        f"Batch {args.batch_size} of 3x32x32, RMSprop(lr=1e-4, alpha=0.9, eps=1e-7), train mode; "
        f"{args.rounds} rounds of {args.steps} steps per variant after {args.warmup_rounds} untimed rounds.",
        "",
        "| variant | built with | trainable parameters | median ms per step |",
        "|---|---|---|---|",
    ]
    for name in names:
        lines.append(
            f"| {name} | `{notes[name]}` | {trainable[name]:,} | {1e3 * statistics.median(per_round[name]):.1f} |"
        )
    lines += [
        "",
        "| ratio | median of per-round ratios | min - max over rounds | published | target |",
        "|---|---|---|---|---|",
    ]
    for variant, reference, label, published, target in RATIOS:
        ratios = [a / b for a, b in zip(per_round[variant], per_round[reference])]
        median = statistics.median(ratios)
        if target is None:
            published_text, target_text = "-", "-"
        else:
            verdict = "met" if median <= target else "missed"
            published_text, target_text = f"{published:.2f}x", f"<= {target:.2f}x ({verdict})"
        lines.append(
            f"| {label} | {median:.3f}x | {min(ratios):.2f} - {max(ratios):.2f} | {published_text} | {target_text} |"
        )
    emit_report(lines, args.output)


if __name__ == "__main__":
    main()
