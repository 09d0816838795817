"""Helpers shared by the benchmark scripts: device synchronisation and the machine line of a report."""

from __future__ import annotations

import os
import platform
import subprocess

import torch

__all__ = ["sync", "machine_description"]


def sync(device: torch.device) -> None:
    """Wait for the device's queued work, so that a timer sees all of it (no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def machine_description() -> str:
    """Describe the CPU model, its logical CPUs, the torch version and its thread count."""
    model = platform.processor() or platform.machine()
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        model = next(line.split(":", 1)[1].strip() for line in lscpu.splitlines() if line.startswith("Model name"))
    except (OSError, subprocess.CalledProcessError, StopIteration):
        pass
    threads = torch.get_num_threads()
    return f"{model}, {os.cpu_count()} logical CPUs, torch {torch.__version__}, torch threads: {threads}"
