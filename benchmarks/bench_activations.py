"""Benchmark the adaptive activations against native torch activations.

Measures forward plus backward of each family and granularity on float32
tensors against ``torch.tanh`` (F-neuron) or ``F.silu`` (AHAF, LEAF) on the
same tensor, and AHAF started as ReLU against ``torch.relu``. The two run
interleaved, ``--repeats`` times after warm-up; the table gives the median
time of each and the median of the per-repeat ratios. The last column is
the bytes that autograd keeps for backward, counted once per storage with
``torch.autograd.graph.saved_tensors_hooks``.

The ``native`` backend compiles its C++ kernels before timing starts (once
per machine, then cached), so build time never enters a measurement.

Run: ``python benchmarks/bench_activations.py`` (prints a Markdown table).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from typing import Callable

import torch
import torch.nn.functional as F

from reactivate import AHAF, LEAF, FNeuronActivation
from reactivate.activations import kernels

from benchmark_support import sync

__all__ = ["main"]

SHAPES = {"64x512": (64, 512), "64x32x32x32": (64, 32, 32, 32)}

# Each family and the torch activation it is timed against. "ahaf-relu" is
# AHAF started as ReLU with the paper's gamma = 1e9, where the kernels take
# their saturated shortcut.
FAMILIES = ("fneuron", "ahaf", "leaf", "ahaf-relu")
BASELINES = {
    "fneuron": ("tanh", torch.tanh),
    "ahaf": ("silu", F.silu),
    "leaf": ("silu", F.silu),
    "ahaf-relu": ("relu", torch.relu),
}



def _one_step(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, grad: torch.Tensor) -> float:
    """Return the seconds of one forward plus backward of ``fn`` on ``x``."""
    sync(x.device)
    start = time.perf_counter()
    fn(x).backward(grad)
    sync(x.device)
    seconds = time.perf_counter() - start
    x.grad = None
    return seconds


def time_pair(
    fn: Callable[[torch.Tensor], torch.Tensor],
    baseline: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    repeats: int,
    warmup: int,
) -> tuple[float, float, float]:
    """Time ``fn`` against ``baseline``, interleaved; return their medians and the median ratio.

    Each repeat runs both, in an order that alternates from one repeat to
    the next, and contributes one ratio. On a shared machine whose speed
    drifts, a ratio of neighbouring runs is steadier than a ratio of
    medians taken seconds apart.
    """
    grad = torch.randn_like(x)
    times, base_times, ratios = [], [], []
    for i in range(warmup + repeats):
        if i % 2:
            seconds = _one_step(fn, x, grad)
            base = _one_step(baseline, x, grad)
        else:
            base = _one_step(baseline, x, grad)
            seconds = _one_step(fn, x, grad)
        if i >= warmup:
            times.append(seconds)
            base_times.append(base)
            ratios.append(seconds / base)
    return statistics.median(times), statistics.median(base_times), statistics.median(ratios)


def saved_bytes(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> int:
    """Return the bytes of the distinct tensors that autograd saves for backward."""
    seen: dict[tuple[int, int], int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        key = (t.untyped_storage().data_ptr(), t.untyped_storage().nbytes())
        seen[key] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        y = fn(x)
    del y
    return sum(seen.values())


def build(family: str, granularity: str, shape: tuple[int, ...], device: torch.device) -> torch.nn.Module:
    kwargs = {"granularity": granularity, "shape": shape[1:] if granularity != "layer" else None}
    if family == "fneuron":
        module = FNeuronActivation("tanh", **kwargs)
    elif family == "ahaf":
        module = AHAF("silu", **kwargs)
    elif family == "ahaf-relu":
        module = AHAF("relu", **kwargs)
    else:
        module = LEAF("silu", **kwargs)
    return module.to(device)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20, help="timed runs per case (default 20)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs before timing (default 3)")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    parser.add_argument("--backends", default="eager,compiled,native",
                        help="kernel backends, comma-separated (default eager,compiled,native)")
    parser.add_argument("--granularities", default="layer,channel,neuron", help="comma-separated (default all three)")
    parser.add_argument("--shapes", default=",".join(SHAPES), help=f"comma-separated of {', '.join(SHAPES)}")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--reference", action="store_true", help="also time the plain-formula modules (slow for F-neuron)")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    backends = args.backends.split(",")
    unknown = [b for b in backends if b not in kernels.BACKENDS]
    if unknown:
        parser.error(f"unknown backends {unknown}; choose from {', '.join(kernels.BACKENDS)}")
    if "native" in backends:
        start = time.perf_counter()
        kernels.native.load()
        print(f"native kernels loaded in {time.perf_counter() - start:.1f} s (includes the build on a cold cache)")

    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} threads, device {device}, median of {args.repeats}\n")
    print("| family | granularity | tensor | path | ms | native ms | ratio | saved for backward |")
    print("|---|---|---|---|---|---|---|---|")
    for shape_name in args.shapes.split(","):
        shape = SHAPES[shape_name]
        x = torch.randn(shape, device=device, requires_grad=True)
        for family in FAMILIES:
            native_name, native = BASELINES[family]
            for granularity in args.granularities.split(","):
                module = build(family, granularity, shape, device)
                paths = [(b, module) for b in backends]
                if args.reference:
                    paths.append(("plain autograd", module.reference_forward))
                for path, fn in paths:
                    if path in kernels.BACKENDS:
                        kernels.set_backend(path)
                    else:
                        kernels.set_backend("eager")
                    # The plain F-neuron formula materialises m values per element,
                    # so it runs fewer times.
                    slow = path == "plain autograd" and family == "fneuron"
                    repeats = max(3, args.repeats // 4) if slow else args.repeats
                    seconds, native_s, ratio = time_pair(fn, native, x, repeats, 1 if slow else args.warmup)
                    mib = saved_bytes(fn, x) / 2**20
                    native_mib = saved_bytes(native, x) / 2**20
                    print(f"| {family} | {granularity} | {shape_name} | {path} | {1e3 * seconds:.3f} | "
                          f"{native_name} {1e3 * native_s:.3f} | {ratio:.2f}x | "
                          f"{mib:.2f} MiB ({native_name}: {native_mib:.2f}) |", flush=True)
    kernels.set_backend("eager")


if __name__ == "__main__":
    main()
