"""Measure how long replace_activations takes and how much memory it adds.

Builds a model of about 100M parameters with random weights: residual MLP
blocks whose forward mixes an activation module called twice and a
functional ``F.silu`` (so the fx rewrite runs), or torchvision's vit_b_16.
Reports, as the median of ``--repeat`` fresh models:

* one forward pass of the model on the example batch;
* ``replace_activations`` without ``example_input`` (tracing + swapping);
* ``replace_activations`` with ``example_input`` (adds three forward passes:
  the original, the probes and the replaced model);
* the peak resident memory added by the replacement, relative to the
  parameter bytes (Linux ``/proc/self/status`` VmHWM, reset before each
  measurement through ``/proc/self/clear_refs``).

Run: ``python benchmarks/bench_replace.py [--model mlp|vit_b_16] [--repeat 3]``
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

from reactivate import replace_activations


class Block(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(width, width)
        self.fc2 = nn.Linear(width, width)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act(self.fc1(x))
        return self.act(x + F.silu(self.fc2(h)))


def build(name: str, width: int, depth: int) -> nn.Module:
    torch.manual_seed(0)
    if name == "vit_b_16":
        import torchvision

        return torchvision.models.vit_b_16(weights=None, image_size=32).eval()
    return nn.Sequential(*[Block(width) for _ in range(depth)]).eval()


def example(name: str, width: int, batch: int) -> torch.Tensor:
    if name == "vit_b_16":
        return torch.randn(batch, 3, 32, 32)
    return torch.randn(batch, width)


def _status(field: str) -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not found in /proc/self/status")


def reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")


def measure(name: str, width: int, depth: int, batch: int, preset: str, with_input: bool) -> dict:
    model = build(name, width, depth)
    x = example(name, width, batch)
    with torch.no_grad():
        model(x)  # warm-up
        start = time.perf_counter()
        model(x)
        forward = time.perf_counter() - start
    param_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    gc.collect()
    rss_before = _status("VmRSS")
    reset_peak()
    start = time.perf_counter()
    report = replace_activations(model, preset, example_input=x if with_input else None)
    seconds = time.perf_counter() - start
    peak_added = _status("VmHWM") - rss_before
    return {
        "params": sum(p.numel() for p in model.parameters()),
        "param_bytes": param_bytes,
        "sites": len(report.replaced),
        "forward_s": forward,
        "replace_s": seconds,
        "peak_added_bytes": peak_added,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=["mlp", "vit_b_16"], default="mlp")
    parser.add_argument("--width", type=int, default=4096, help="MLP width (default 4096)")
    parser.add_argument("--depth", type=int, default=3, help="MLP blocks of two linear layers (default 3)")
    parser.add_argument("--batch", type=int, default=8, help="rows of the example batch (default 8)")
    parser.add_argument("--repeat", type=int, default=3, help="fresh models per measurement (default 3)")
    parser.add_argument("--preset", default=None,
                        help="replacement preset (default: paper for mlp, approximate for vit_b_16, whose GELUs "
                             "the paper preset leaves alone)")
    args = parser.parse_args()
    preset = args.preset or ("approximate" if args.model == "vit_b_16" else "paper")

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    for with_input in (False, True):
        runs = [measure(args.model, args.width, args.depth, args.batch, preset, with_input)
                for _ in range(args.repeat)]
        first = runs[0]
        forward = statistics.median(r["forward_s"] for r in runs)
        replace = statistics.median(r["replace_s"] for r in runs)
        peak = statistics.median(r["peak_added_bytes"] for r in runs)
        # With example_input and at least one site, the call runs three forward passes.
        extra = replace - (3 * forward if with_input and first["sites"] else 0.0)
        print(f"{args.model}: {first['params'] / 1e6:.1f}M parameters ({first['param_bytes'] / 2**20:.0f} MiB), "
              f"{first['sites']} sites ({preset}), example_input={'yes' if with_input else 'no'}: "
              f"forward {forward * 1e3:.1f} ms, replace {replace * 1e3:.1f} ms "
              f"({extra * 1e3:.1f} ms beyond its forward passes), "
              f"peak memory added {peak / 2**20:.1f} MiB = {100 * peak / first['param_bytes']:.2f}% of the parameters")


if __name__ == "__main__":
    main()
