"""Helpers shared by the benchmark scripts: device synchronisation and the report's machine line and output."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

import torch

from reactivate.atomic_files import atomic_write_text

__all__ = ["sync", "machine_description", "emit_report"]


def sync(device: torch.device) -> None:
    """Wait for the device's queued work, so that a timer measures all of it (no-op on the CPU)."""
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


def emit_report(lines: list[str], output: Path | None) -> None:
    """Print the Markdown report made of ``lines`` and, when ``output`` is given, write it there atomically."""
    report = "\n".join(lines) + "\n"
    print(report)
    if output is not None:
        atomic_write_text(output, report)
