"""Figures: adaptive activation forms, training curves, approximation error.

Every function builds a :class:`matplotlib.figure.Figure` directly, without
``pyplot``, so nothing here changes the global matplotlib backend, and PNG
files are rendered with the Agg canvas. With ``path=`` the figure is written
to a temporary file in the same folder and renamed, so a failure never
leaves a half-written PNG.

Adaptive activations with one parameter set per channel or per neuron have
many curves per layer. The figures draw their mean over all sets as the main
line and the first few sets (``max_channels``) as thin lines.
"""

from __future__ import annotations

import copy
import csv
import math
import os
from pathlib import Path
from typing import Mapping, Sequence

import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from .activations import AdaptiveActivation, classic_function
from .atomic_files import atomic_write

__all__ = [
    "activation_curves",
    "plot_activation_forms",
    "plot_training_curves",
    "plot_squared_error",
    "read_history",
    "save_figure",
]

# Evaluate at most this many elements per forward call when a module keeps
# one parameter set per neuron, to bound memory on large layers.
_MAX_ELEMENTS_PER_CALL = 2_000_000



def save_figure(figure: Figure, path: str | os.PathLike, *, dpi: int = 120) -> Path:
    """Render ``figure`` as a PNG file at ``path`` through a temporary file.

    Args:
        figure: the figure to render.
        path: destination; parent folders are created.
        dpi: resolution in dots per inch. Default: 120.

    Returns:
        The destination path.
    """
    def write_png(stream) -> None:
        FigureCanvasAgg(figure)
        figure.savefig(stream, format="png", dpi=dpi)

    return atomic_write(path, write_png)


def activation_curves(module: AdaptiveActivation, z: torch.Tensor) -> torch.Tensor:
    """Evaluate an adaptive activation on the grid ``z`` for every parameter set.

    Args:
        module: the adaptive activation; it is not changed.
        z: 1-D grid of inputs.

    Returns:
        A tensor of shape ``(len(z), K)`` on the CPU, where ``K`` is 1 for
        ``"layer"`` granularity, the number of channels for ``"channel"`` and
        the number of neurons for ``"neuron"``.
    """
    if z.dim() != 1:
        raise ValueError(f"z must be a 1-D grid, got shape {tuple(z.shape)}")
    parameter = next(module.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    dtype = parameter.dtype if parameter is not None else z.dtype
    grid = z.to(device=device, dtype=dtype)
    with torch.no_grad():
        if module.granularity == "layer":
            return module(grid).reshape(-1, 1).cpu()
        if module.granularity == "channel":
            channels = module.shape[0]
            return module(grid.unsqueeze(1).expand(-1, channels)).cpu()
        neurons = math.prod(module.shape)
        chunk = max(1, _MAX_ELEMENTS_PER_CALL // neurons)
        pieces = []
        for start in range(0, grid.numel(), chunk):
            part = grid[start : start + chunk]
            inputs = part.reshape(-1, *([1] * len(module.shape))).expand(-1, *module.shape)
            pieces.append(module(inputs).reshape(part.numel(), neurons).cpu())
        return torch.cat(pieces)


def _describe(module: AdaptiveActivation) -> str:
    family = {"ahaf": "AHAF", "leaf": "LEAF", "fneuron": "F-neuron"}.get(module.family, module.family)
    return f"{family} from {module.init}"


def _scalar_parameters(module: AdaptiveActivation) -> dict[str, float]:
    """Return the module's parameters by name when all are scalars, else an empty dict."""
    values = {}
    for key, parameter in module.named_parameters():
        if parameter.numel() != 1:
            return {}
        values[key] = float(parameter.detach())
    return values


def _draw_curves(axes, z, curves: torch.Tensor, *, label: str, color: str, style: str, max_channels: int) -> None:
    z = z.numpy()
    if curves.shape[1] > 1:
        for index in range(min(max_channels, curves.shape[1])):
            axes.plot(z, curves[:, index].numpy(), color=color, linestyle=style, linewidth=0.6, alpha=0.35)
        label = f"{label} (mean of {curves.shape[1]})"
    axes.plot(z, curves.mean(dim=1).numpy(), color=color, linestyle=style, linewidth=1.6, label=label)


def plot_activation_forms(
    replaced: Mapping[str, AdaptiveActivation],
    finetuned: Mapping[str, AdaptiveActivation] | None = None,
    *,
    z_range: tuple[float, float] = (-6.0, 6.0),
    points: int = 601,
    max_channels: int = 3,
    title: str | None = None,
    path: str | os.PathLike | None = None,
) -> Figure:
    """Draw each adaptive activation over the classic function it replaced.

    One panel per layer shows the original function, the adaptive function
    right after replacement and, when given, the same layer after fine-tuning.

    Args:
        replaced: adaptive modules right after replacement, by layer name.
        finetuned: the same layers after fine-tuning, by layer name; layers
            missing here are drawn without a fine-tuned curve. Default: None.
        z_range: input range of the x axis. Default: (-6, 6).
        points: number of grid points. Default: 601.
        max_channels: thin lines drawn for per-channel or per-neuron
            parameters besides their mean. Default: 3.
        title: figure title. Default: None.
        path: when given, the PNG is written there. Default: None.

    Returns:
        The figure.

    Example:
        >>> from reactivate import AHAF
        >>> figure = plot_activation_forms({"act": AHAF("relu")})
    """
    if not replaced:
        raise ValueError("replaced is empty; give at least one adaptive activation by layer name")
    low, high = float(z_range[0]), float(z_range[1])
    if not low < high:
        raise ValueError(f"z_range={z_range!r} is empty or reversed; give (low, high) with low < high")
    finetuned = finetuned or {}
    z = torch.linspace(low, high, points, dtype=torch.float64)
    columns = min(3, len(replaced))
    rows = math.ceil(len(replaced) / columns)
    figure = Figure(figsize=(4.2 * columns, 3.3 * rows), layout="constrained")
    for index, (name, module) in enumerate(replaced.items()):
        axes = figure.add_subplot(rows, columns, index + 1)
        original = classic_function(module.init, z, **module._classic_kwargs())
        axes.plot(z.numpy(), original.numpy(), color="black", linewidth=2.8, alpha=0.3, label=f"{module.init} (original)")
        _draw_curves(
            axes, z, activation_curves(module, z), label="replaced", color="tab:blue",
            style="--", max_channels=max_channels,
        )
        if name in finetuned:
            _draw_curves(
                axes, z, activation_curves(finetuned[name], z), label="fine-tuned", color="tab:red",
                style="-", max_channels=max_channels,
            )
        title_text = f"{name}: {_describe(module)}"
        if name in finetuned:
            values = _scalar_parameters(finetuned[name])
            if values:
                title_text += "\nfine-tuned: " + ", ".join(f"{key}={value:.4g}" for key, value in values.items())
        axes.set_title(title_text, fontsize=9)
        axes.set_xlabel("z")
        axes.set_ylabel("f(z)")
        axes.grid(alpha=0.3)
        axes.legend(fontsize=7)
    if title:
        figure.suptitle(title)
    if path is not None:
        save_figure(figure, path)
    return figure


def read_history(path: str | os.PathLike) -> tuple[list[int], list[float]]:
    """Read epochs and test accuracies from a training run's ``history.csv``.

    Args:
        path: the ``history.csv`` file or the run folder that contains it.

    Returns:
        ``(epochs, test_accuracies)`` in file order.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "history.csv"
    if not path.is_file():
        raise FileNotFoundError(f"training history {str(path)!r} not found; give a run folder with history.csv")
    epochs, accuracies = [], []
    with open(path, newline="", encoding="utf-8") as stream:
        reader = csv.DictReader(stream)
        missing = {"epoch", "test_accuracy"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{str(path)!r} has no column {', '.join(sorted(missing))}; it is not a training history")
        for record in reader:
            epochs.append(int(record["epoch"]))
            accuracies.append(float(record["test_accuracy"]))
    return epochs, accuracies


def plot_training_curves(
    panels: Mapping[str, Mapping[str, tuple[Sequence[int], Sequence[float]]]],
    *,
    ylabel: str = "test accuracy, %",
    title: str | None = None,
    path: str | os.PathLike | None = None,
) -> Figure:
    """Draw test accuracy per epoch, one panel per base model.

    Args:
        panels: panel title -> curve label -> ``(epochs, values)``. A
            fine-tuning curve whose epochs continue from pre-training lines
            up after the reference curve.
        ylabel: y axis label. Default: ``"test accuracy, %"``.
        title: figure title. Default: None.
        path: when given, the PNG is written there. Default: None.

    Returns:
        The figure.
    """
    if not panels:
        raise ValueError("panels is empty; give at least one panel of curves")
    figure = Figure(figsize=(5.0 * len(panels), 3.6), layout="constrained")
    for index, (panel, curves) in enumerate(panels.items()):
        axes = figure.add_subplot(1, len(panels), index + 1)
        for label, (epochs, values) in curves.items():
            marker = "o" if len(epochs) <= 10 else None
            axes.plot(list(epochs), list(values), label=label, marker=marker, markersize=3)
        axes.set_title(panel)
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_xlabel("epoch")
        axes.set_ylabel(ylabel)
        axes.grid(alpha=0.3)
        axes.legend(fontsize=8)
    if title:
        figure.suptitle(title)
    if path is not None:
        save_figure(figure, path)
    return figure


def plot_squared_error(
    module: AdaptiveActivation,
    *,
    z_range: tuple[float, float] = (-6.0, 6.0),
    points: int = 4001,
    title: str | None = None,
    path: str | os.PathLike | None = None,
) -> Figure:
    """Draw ``(f_adaptive(z) - f_original(z))^2`` over ``z``.

    The module is copied and evaluated in float64, so the curve shows the
    approximation error, not float32 rounding. Per-channel or per-neuron
    modules are drawn by their mean curve.

    Args:
        module: an adaptive activation, such as an F-neuron started from tanh.
        z_range: input range. Default: (-6, 6).
        points: number of grid points. Default: 4001.
        title: figure title. Default: None.
        path: when given, the PNG is written there. Default: None.

    Returns:
        The figure.

    Example:
        >>> from reactivate import FNeuronActivation
        >>> figure = plot_squared_error(FNeuronActivation("tanh"))
    """
    low, high = float(z_range[0]), float(z_range[1])
    if not low < high:
        raise ValueError(f"z_range={z_range!r} is empty or reversed; give (low, high) with low < high")
    z = torch.linspace(low, high, points, dtype=torch.float64)
    precise = copy.deepcopy(module).to(device="cpu", dtype=torch.float64)
    adaptive = activation_curves(precise, z).mean(dim=1)
    original = classic_function(module.init, z, **module._classic_kwargs())
    squared = (adaptive - original) ** 2
    figure = Figure(figsize=(6.0, 3.6), layout="constrained")
    axes = figure.add_subplot(1, 1, 1)
    axes.plot(z.numpy(), squared.numpy(), color="tab:purple", linewidth=1.2)
    interval = getattr(module, "interval", None)
    if interval is not None:
        for edge in interval:
            axes.axvline(edge, color="grey", linestyle=":", linewidth=1)
    peak = float(squared.max())
    axes.set_title(title or f"Squared error of {_describe(module)}, max {peak:.3g}", fontsize=10)
    axes.set_xlabel("z")
    axes.set_ylabel("squared error")
    axes.grid(alpha=0.3)
    if path is not None:
        save_figure(figure, path)
    return figure
