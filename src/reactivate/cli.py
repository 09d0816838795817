"""The ``reactivate`` command: train, replace, fine-tune, evaluate, plot, reproduce.

Each subcommand is one step a user can run alone::

    reactivate train --activation silu --epochs 15 --out runs/silu
    reactivate replace runs/silu/final.pt --out runs/silu/adapted.pt
    reactivate finetune runs/silu/adapted.pt --epochs 5 --out runs/silu-tuned
    reactivate evaluate runs/silu-tuned/final.pt
    reactivate plot --checkpoint runs/silu/adapted.pt --finetuned runs/silu-tuned/final.pt \\
        --runs runs/silu runs/silu-tuned --out figures
    reactivate reproduce --dataset digits --out results

Invalid options, missing data and unusable checkpoints end with one line
``reactivate: error: ...`` on standard error and a non-zero exit status.
``train``, ``finetune`` and ``reproduce`` join a ``torchrun`` process group
when started under ``torchrun``; only rank 0 prints and writes files.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Sequence

__all__ = ["main", "build_parser", "CommandError"]

PROG = "reactivate"
_EXIT_ERROR = 1
_EXIT_USAGE = 2


class CommandError(ValueError):
    """An option value or a file given on the command line cannot be used."""


class _UsageError(Exception):
    """An argparse error, turned into one line by :func:`main`."""


class _Parser(argparse.ArgumentParser):
    """ArgumentParser whose errors end up as one line instead of usage + message."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise _UsageError(f"{message} (see '{self.prog} --help')")


# -- option types ----------------------------------------------------------------


def _int_at_least(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid integer {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} is invalid; give an integer of at least {minimum}")
        return value

    parse.__name__ = f"integer >= {minimum}"
    return parse


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text} is invalid; give a positive number")
    return value


def _bases(text: str) -> list[str]:
    from .experiments.published import BASES

    names = [name.strip().lower() for name in text.split(",") if name.strip()]
    if not names:
        raise argparse.ArgumentTypeError("no base given; name one or more of " + ", ".join(BASES))
    for name in names:
        if name not in BASES:
            raise argparse.ArgumentTypeError(f"unknown base {name!r}; choose from {', '.join(BASES)}")
    return names


# -- parser ----------------------------------------------------------------------


def _add_data_options(parser: argparse.ArgumentParser, *, subsets: bool = True) -> None:
    group = parser.add_argument_group("data")
    group.add_argument(
        "--dataset", default="digits",
        help=(
            "dataset name: digits (offline, scikit-learn's 8x8 digits scaled to 32x32), cifar10, "
            "mnist or fashion-mnist (default: digits)"
        ),
    )
    group.add_argument("--data-dir", default=None, help="folder of the dataset files, also the download destination")
    group.add_argument("--download", action="store_true", help="download the dataset if it is missing")
    if subsets:
        group.add_argument(
            "--train-subset", type=_int_at_least(1), default=None, metavar="N",
            help="train on N random training images (default: all)",
        )
    group.add_argument(
        "--test-subset", type=_int_at_least(1), default=None, metavar="N",
        help="evaluate on N random test images (default: all)",
    )


def _add_training_options(
    parser: argparse.ArgumentParser, *, epochs_default: int | None, epochs_help: str, epochs_minimum: int = 1
) -> None:
    group = parser.add_argument_group("training")
    group.add_argument(
        "--epochs", type=_int_at_least(epochs_minimum), default=epochs_default, metavar="N", help=epochs_help
    )
    group.add_argument(
        "--batch-size", type=_int_at_least(1), default=64, metavar="N",
        help="training batch size per process (default: 64)",
    )
    group.add_argument("--lr", type=_positive_float, default=1e-4, help="RMSprop learning rate (default: 1e-4)")
    group.add_argument("--seed", type=_int_at_least(0), default=42, help="random seed (default: 42)")
    group.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: auto)")
    group.add_argument("--no-augment", action="store_true", help="train without random flips and translations")
    group.add_argument("--quiet", action="store_true", help="hide the per-epoch progress bar")


def _add_replacement_options(parser: argparse.ArgumentParser, *, preset_option: str, preset_default: str) -> None:
    group = parser.add_argument_group("replacement")
    group.add_argument(
        preset_option, default=preset_default, metavar="PRESET",
        help=(
            "replacement preset: paper (ReLU and SiLU to AHAF; Tanh and Sigmoid to an F-neuron "
            "with 18 functions on [-4, 4]), exact, approximate, or a family name (ahaf, leaf, fneuron) "
            f"that replaces every classic activation of the model (default: {preset_default})"
        ),
    )
    group.add_argument(
        "--include", action="append", default=None, metavar="REGEX",
        help="replace only activations whose module name matches REGEX (repeatable), e.g. ffn_act",
    )
    group.add_argument(
        "--exclude", action="append", default=None, metavar="REGEX",
        help="keep activations whose module name matches REGEX (repeatable)",
    )
    group.add_argument(
        "--granularity", default="layer", choices=("layer", "channel", "neuron"),
        help="one parameter set per layer, per channel or per neuron (default: layer)",
    )


def _add_architecture_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("architecture of a plain state-dict file")
    group.add_argument(
        "--activation", default="relu",
        help="KerasNet activation of the convolutional layers when CHECKPOINT is a plain state dict (default: relu)",
    )
    group.add_argument(
        "--ffn-activation", default=None,
        help="activation of the fully connected layer (default: same as --activation)",
    )


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser of the ``reactivate`` command."""
    from .experiments.matrix import DEFAULT_EPOCHS, DEFAULT_TUNE_EPOCHS

    parser = _Parser(
        prog=PROG,
        description=(
            "Replace the activations of trained KerasNet models with adaptive ones "
            "(AHAF, F-neuron, LEAF) that start out identical, fine-tune them, and "
            "reproduce the experiments of Bodyanskiy & Kostiuk (ICST 2023)."
        ),
    )
    from . import __version__
    from .activations.kernels import BACKENDS

    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    parser.add_argument(
        "--kernels", choices=BACKENDS, default="auto",
        help=(
            "activation kernels of the train, finetune and reproduce commands (the others run a few "
            "forward passes with the eager ones): auto builds the fused C++ CPU kernels once (about "
            "35 s, then cached) and falls back to eager if no compiler is found (default: auto)"
        ),
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    train = commands.add_parser("train", help="train a KerasNet, classic or adaptive, from a fresh start")
    train.add_argument(
        "--out", required=True, type=Path, help="run folder: checkpoint.pt, history.csv, best.pt, final.pt"
    )
    train.add_argument(
        "--activation", default="relu",
        help="classic activation of every layer: relu, silu, tanh, sigmoid, gelu... (default: relu)",
    )
    train.add_argument("--ffn-activation", default=None, help="activation of the fully connected layer (default: --activation)")
    _add_replacement_options(train, preset_option="--adaptive", preset_default="none")
    _add_data_options(train)
    _add_training_options(train, epochs_default=100, epochs_help="training epochs (default: 100)")

    replace = commands.add_parser("replace", help="replace the activations of a trained model")
    replace.add_argument("checkpoint", type=Path, help="model file from train, or a plain KerasNet state dict")
    replace.add_argument("--out", required=True, type=Path, help="file that receives the adapted model")
    _add_replacement_options(replace, preset_option="--preset", preset_default="paper")
    _add_architecture_options(replace)
    _add_data_options(replace, subsets=False)
    replace.add_argument("--no-eval", action="store_true", help="skip the test accuracy before and after")
    replace.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: auto)")

    finetune = commands.add_parser("finetune", help="fine-tune an adapted model, activations only by default")
    finetune.add_argument("checkpoint", type=Path, help="adapted model file from replace")
    finetune.add_argument(
        "--out", required=True, type=Path, help="run folder: checkpoint.pt, history.csv, best.pt, final.pt"
    )
    finetune.add_argument("--all", action="store_true", help="train every parameter, not only the activations")
    finetune.add_argument(
        "--epoch-offset", type=_int_at_least(0), default=None, metavar="N",
        help="epochs already trained; numbering continues after them (default: read from the model file, else 0)",
    )
    _add_data_options(finetune)
    _add_training_options(
        finetune, epochs_default=50, epochs_help="fine-tuning epochs (default: 50)", epochs_minimum=0
    )

    evaluate = commands.add_parser("evaluate", help="print the test accuracy and loss of a model file")
    evaluate.add_argument("checkpoint", type=Path, help="model file, or a plain KerasNet state dict")
    _add_architecture_options(evaluate)
    _add_data_options(evaluate, subsets=False)
    evaluate.add_argument("--batch-size", type=_int_at_least(1), default=1000, metavar="N", help="images per evaluation batch (default: 1000)")
    evaluate.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: auto)")
    evaluate.add_argument("--json", action="store_true", help="print the result as JSON")

    plot = commands.add_parser("plot", help="draw activation forms and training curves")
    plot.add_argument("--checkpoint", type=Path, default=None, help="adapted model file: its activations over their originals")
    plot.add_argument("--finetuned", type=Path, default=None, help="the same model after fine-tuning, drawn on top")
    plot.add_argument("--runs", type=Path, nargs="+", default=None, metavar="DIR", help="run folders whose history.csv to draw")
    plot.add_argument("--out", required=True, type=Path, help="folder that receives the PNG files")

    reproduce = commands.add_parser(
        "reproduce",
        help="run the paper's whole experiment matrix and write tables and figures",
        description=(
            "Train the four reference models (ReLU, SiLU, Tanh, Sigmoid), the adaptive models from "
            "scratch, replace the references' activations and fine-tune them; write tables.md, "
            "table1.csv, table2.csv, results.json, figures/*.png and runs/ into --out. "
            "A rerun skips finished steps."
        ),
    )
    reproduce.add_argument("--out", required=True, type=Path, help="output folder")
    reproduce.add_argument(
        "--bases", type=_bases, default=None, metavar="LIST",
        help="comma-separated reference activations to run (default: relu,silu,tanh,sigmoid)",
    )
    reproduce.add_argument(
        "--tune-epochs", type=_int_at_least(0), default=None, metavar="N",
        help=(
            f"activation-only fine-tuning epochs (default: {DEFAULT_TUNE_EPOCHS['cifar10']} on cifar10 "
            f"as in the paper, {DEFAULT_TUNE_EPOCHS['digits']} on digits; 0 skips fine-tuning)"
        ),
    )
    reproduce.add_argument(
        "--granularity", default="layer", choices=("layer", "channel", "neuron"),
        help="adaptive parameter sets per layer, channel or neuron (default: layer)",
    )
    _add_data_options(reproduce)
    _add_training_options(
        reproduce, epochs_default=None,
        epochs_help=(
            f"pre-training epochs (default: {DEFAULT_EPOCHS['cifar10']} on cifar10 as in the paper, "
            f"{DEFAULT_EPOCHS['digits']} on digits, which runs the whole matrix in about 20 minutes on a 2-core CPU)"
        ),
    )
    return parser


# -- shared pieces of the commands ---------------------------------------------------


def _printer(is_main: bool) -> Callable[..., None]:
    """Return ``print`` on rank 0 and a no-op elsewhere."""
    return print if is_main else (lambda *args, **kwargs: None)


def _load_data(args: argparse.Namespace, *, with_train: bool = True):
    from .data import load_dataset

    return load_dataset(
        args.dataset,
        args.data_dir,
        download=args.download,
        train_subset=getattr(args, "train_subset", None) if with_train else None,
        test_subset=getattr(args, "test_subset", None),
        seed=getattr(args, "seed", 42),
    )


def _resolve_device(name: str):
    import torch

    from .training.distributed import current_dist_info

    if name == "auto":
        return current_dist_info().device
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise CommandError(f"--device {name!r} is invalid; give auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise CommandError(f"--device {name!r} needs CUDA, which is not available here; use --device cpu or auto")
    return device


def _kerasnet_sizes_from_features(features: int) -> list[int]:
    """Return the square image sides whose KerasNet flattens to ``features`` values.

    Several sides map to the same feature count, because the convolutions
    and poolings round down.
    """
    if features % 64:
        return []
    side = math.isqrt(features // 64)
    if side * side * 64 != features:
        return []
    return [size for size in range(10, 4 * side + 12) if ((size - 2) // 2 - 2) // 2 == side]


def _kerasnet_from_state_dict(state: dict, args: argparse.Namespace, path: Path, image_size: int | None):
    """Build a KerasNet whose shapes fit a plain state dict and load it strictly.

    ``image_size`` (the dataset's side) picks the input size when several fit
    the weights; without it 32 is preferred, then the smallest that fits.
    """
    from .models import KerasNet
    from .training.errors import CheckpointError

    needed = ("conv1.weight", "fc1.weight", "fc2.weight")
    if not all(key in state for key in needed):
        raise CommandError(
            f"{str(path)!r} is neither a reactivate model file nor a KerasNet state dict "
            f"(it lacks {', '.join(key for key in needed if key not in state)})"
        )
    sizes = _kerasnet_sizes_from_features(int(state["fc1.weight"].shape[1]))
    if not sizes:
        raise CommandError(f"the state dict in {str(path)!r} does not fit KerasNet on square images")
    preferred = [size for size in (image_size, 32) if size in sizes]
    image_size = preferred[0] if preferred else sizes[0]
    model = KerasNet(
        in_channels=int(state["conv1.weight"].shape[1]),
        num_classes=int(state["fc2.weight"].shape[0]),
        image_size=image_size,
        cnn_activation=args.activation,
        ffn_activation=args.ffn_activation,
    )
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise CheckpointError(
            f"the state dict in {str(path)!r} does not fit KerasNet with activation {args.activation!r}: {first}"
        ) from None
    model.eval()
    return model, {"model_config": model.model_config, "replacement_spec": None, "extra": {}}


def _load_any_model(path: Path, args: argparse.Namespace | None = None, data=None):
    """Load a reactivate model file or, with ``args``, a plain KerasNet state dict.

    ``data``, when given, supplies the image size of a plain state dict.
    """
    import torch

    from .training import load_model
    from .training.checkpoint import safe_load
    from .training.model_file import MODEL_FILE_FORMAT

    if path.is_dir():
        raise CommandError(f"checkpoint {str(path)!r} is a folder; give the path of a model file")
    if not path.is_file():
        raise CommandError(f"checkpoint {str(path)!r} not found; give the path of a model file")
    content = safe_load(path, kind="model file")
    if isinstance(content, dict) and content.get("format") == MODEL_FILE_FORMAT:
        return load_model(path)
    if (
        args is not None
        and isinstance(content, dict)
        and content
        and all(isinstance(key, str) and isinstance(value, torch.Tensor) for key, value in content.items())
    ):
        size = None if data is None else data.image_shape[-1]
        return _kerasnet_from_state_dict(content, args, path, size)
    raise CommandError(
        f"{str(path)!r} is not a reactivate model file; give the final.pt or best.pt that train or finetune wrote, or the file replace wrote"
    )


def _check_model_fits_data(model, data, path: Path) -> None:
    """Raise when the model's input shape or class count differs from the dataset's."""
    config = getattr(model, "model_config", {})
    channels, height, width = data.image_shape
    size = config.get("image_size")
    model_size = (size, size) if isinstance(size, int) else tuple(size or (height, width))
    expected = (config.get("in_channels", channels), *model_size)
    if expected != (channels, height, width) or config.get("num_classes", data.num_classes) != data.num_classes:
        raise CommandError(
            f"the model in {str(path)!r} takes {expected[0]}x{expected[1]}x{expected[2]} images and "
            f"{config.get('num_classes')} classes, but dataset {data.name!r} has "
            f"{channels}x{height}x{width} images and {data.num_classes} classes; choose the dataset it was trained on"
        )


def _example_input(data, device=None):
    """Return a few test images, for the engine's output check and range records."""
    return data.test.images[:8].to(device)


def _resolve_preset(preset: str, model) -> str | dict[str, str]:
    """Turn a family name into a mapping from the model's classic activations to it.

    Any other value is a preset name that the engine checks.
    """
    from .activations import FAMILIES

    if preset not in FAMILIES:
        return preset
    config = getattr(model, "model_config", {})
    names = set()
    for key in ("cnn_activation", "ffn_activation"):
        value = config.get(key)
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str):
                names.add(item)
    if not names:
        raise CommandError(f"the model has no classic activation to turn into {preset!r}")
    return {name: preset for name in sorted(names)}


def _replace(model, preset: str, args: argparse.Namespace, example_input):
    from . import replace_activations

    report = replace_activations(
        model,
        _resolve_preset(preset, model),
        example_input=example_input,
        granularity=args.granularity,
        include=args.include,
        exclude=args.exclude,
    )
    if not report.replaced:
        reason = (
            f"all {len(report.skipped)} activation sites were left alone"
            if report.skipped
            else "the model has no classic activation left (is it already adapted?)"
        )
        raise CommandError(f"no activation was replaced: {reason}; check --preset, --include and --exclude")
    return report


def _train_config(args: argparse.Namespace, **overrides: Any):
    from .training import TrainConfig

    settings = {
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "seed": args.seed,
        "device": args.device,
        "augment": not args.no_augment,
        "progress": not args.quiet,
    }
    settings.update(overrides)
    return TrainConfig(**settings)


def _summarise_training(say: Callable[..., None], result, out: Path) -> None:
    say(
        f"best test accuracy {100 * result.best_accuracy:.2f}% at epoch {result.best_epoch}, "
        f"final {100 * result.final_accuracy:.2f}%, training time {result.train_seconds / 60:.2f} min"
    )
    say(f"final model written to {out / 'final.pt'}, best to {out / 'best.pt'}")


# -- commands --------------------------------------------------------------------------


def _command_train(args: argparse.Namespace) -> int:
    import torch

    from .models import KerasNet
    from .training import fit
    from .training.distributed import cleanup_distributed, setup_distributed

    info = setup_distributed()
    say = _printer(info.is_main)
    try:
        data = _load_data(args)
        channels, height, width = data.image_shape
        torch.manual_seed(args.seed)
        model = KerasNet(
            in_channels=channels,
            num_classes=data.num_classes,
            image_size=height if height == width else (height, width),
            cnn_activation=args.activation,
            ffn_activation=args.ffn_activation,
        )
        if args.adaptive != "none":
            report = _replace(model, args.adaptive, args, _example_input(data))
            say(str(report))
        result = fit(model, data, _train_config(args), args.out)
        _summarise_training(say, result, args.out)
    finally:
        cleanup_distributed()
    return 0


def _command_replace(args: argparse.Namespace) -> int:
    import torch

    from .training import evaluate, save_model

    data = None if args.no_eval else _load_data(args, with_train=False)
    model, meta = _load_any_model(args.checkpoint, args, data)
    device = _resolve_device(args.device)
    model.to(device)
    if data is not None:
        _check_model_fits_data(model, data, args.checkpoint)
        before = evaluate(model, data.test, device=device)
    if data is not None:
        example = _example_input(data, device)
    else:
        # Without a dataset, a batch of zeros of the model's input shape
        # still lets the engine record shapes for channel or neuron granularity.
        config = model.model_config
        size = config.get("image_size", 32)
        height, width = (size, size) if isinstance(size, int) else size
        example = torch.zeros(2, config.get("in_channels", 3), height, width, device=device)
    report = _replace(model, args.preset, args, example)
    print(report)
    if data is not None:
        after = evaluate(model, data.test, device=device)
        agreement = float((before.predictions == after.predictions).double().mean())
        print(f"test accuracy before: {100 * before.accuracy:.2f}%  loss {before.loss:.4f}")
        print(f"test accuracy after:  {100 * after.accuracy:.2f}%  loss {after.loss:.4f}")
        print(f"predictions unchanged on {100 * agreement:.2f}% of {len(data.test)} test images")
    save_model(args.out, model, extra=dict(meta.get("extra") or {}))
    print(f"adapted model written to {args.out}")
    return 0


def _command_finetune(args: argparse.Namespace) -> int:
    from .activations import AdaptiveActivation
    from .training import fit
    from .training.distributed import cleanup_distributed, setup_distributed

    info = setup_distributed()
    say = _printer(info.is_main)
    try:
        model, meta = _load_any_model(args.checkpoint)
        has_adaptive = any(isinstance(module, AdaptiveActivation) for module in model.modules())
        if not has_adaptive and not args.all:
            raise CommandError(
                f"the model in {str(args.checkpoint)!r} has no adaptive activations to fine-tune; "
                "run 'reactivate replace' first or pass --all to train every parameter"
            )
        data = _load_data(args)
        _check_model_fits_data(model, data, args.checkpoint)
        extra = dict(meta.get("extra") or {})
        offset = args.epoch_offset if args.epoch_offset is not None else int(extra.get("epoch", 0))
        config = _train_config(args, trainable="all" if args.all else "activations", epoch_offset=offset)
        result = fit(model, data, config, args.out)
        _summarise_training(say, result, args.out)
    finally:
        cleanup_distributed()
    return 0


def _command_evaluate(args: argparse.Namespace) -> int:
    from .training import evaluate

    data = _load_data(args, with_train=False)
    model, _ = _load_any_model(args.checkpoint, args, data)
    _check_model_fits_data(model, data, args.checkpoint)
    device = _resolve_device(args.device)
    model.to(device)
    result = evaluate(model, data.test, batch_size=args.batch_size, device=device)
    correct = int(round(result.accuracy * len(data.test)))
    if args.json:
        # Percent, as in results.json and the tables.
        record = {
            "accuracy_percent": 100.0 * result.accuracy,
            "loss": result.loss,
            "images": len(data.test),
            "correct": correct,
        }
        print(json.dumps(record))
    else:
        print(f"{args.checkpoint}: test accuracy {100 * result.accuracy:.2f}% ({correct}/{len(data.test)}), loss {result.loss:.4f}")
    return 0


def _command_plot(args: argparse.Namespace) -> int:
    from . import plots
    from .activations import AdaptiveActivation

    if args.checkpoint is None and args.runs is None:
        raise CommandError("nothing to draw; give --checkpoint FILE, --runs DIR..., or both")
    if args.finetuned is not None and args.checkpoint is None:
        raise CommandError("--finetuned needs --checkpoint, the adapted model before fine-tuning")
    if args.checkpoint is not None:
        model, _ = _load_any_model(args.checkpoint)
        replaced = {name: m for name, m in model.named_modules() if isinstance(m, AdaptiveActivation)}
        if not replaced:
            raise CommandError(f"the model in {str(args.checkpoint)!r} has no adaptive activations to draw")
        finetuned = None
        if args.finetuned is not None:
            tuned_model, _ = _load_any_model(args.finetuned)
            finetuned = {name: m for name, m in tuned_model.named_modules() if isinstance(m, AdaptiveActivation)}
        path = args.out / "activations.png"
        plots.plot_activation_forms(replaced, finetuned, title=str(args.checkpoint), path=path)
        print(f"activation forms written to {path}")
    if args.runs is not None:
        curves = {}
        for run in args.runs:
            label = run.name or str(run)
            if label in curves:
                label = str(run)
            curves[label] = plots.read_history(run)
        curves = {label: (epochs, [100 * value for value in values]) for label, (epochs, values) in curves.items()}
        path = args.out / "training_curves.png"
        plots.plot_training_curves({"test accuracy": curves}, path=path)
        print(f"training curves written to {path}")
    return 0


def _command_reproduce(args: argparse.Namespace) -> int:
    from .experiments.matrix import MatrixOptions, run_matrix
    from .experiments.published import BASES
    from .training.distributed import cleanup_distributed, setup_distributed

    options = MatrixOptions(
        dataset=args.dataset,
        bases=tuple(args.bases) if args.bases else BASES,
        epochs=args.epochs,
        tune_epochs=args.tune_epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        train_subset=args.train_subset,
        test_subset=args.test_subset,
        data_dir=args.data_dir,
        download=args.download,
        device=args.device,
        granularity=args.granularity,
        progress=not args.quiet,
        augment=not args.no_augment,
    )
    info = setup_distributed()
    say = _printer(info.is_main)
    try:
        result = run_matrix(options, args.out, log=say)
    finally:
        cleanup_distributed()
    if info.is_main:
        say("")
        say((args.out / "tables.md").read_text(encoding="utf-8"))
        say(f"finished in {result.seconds / 60:.1f} min; tables, figures and results.json are in {args.out}")
    return 0


_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "train": _command_train,
    "replace": _command_replace,
    "finetune": _command_finetune,
    "evaluate": _command_evaluate,
    "plot": _command_plot,
    "reproduce": _command_reproduce,
}


# -- entry point -------------------------------------------------------------------


def _one_line(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    return " ".join(text.split())


_TRAINING_COMMANDS = ("train", "finetune", "reproduce")


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Print a warning as one line, without the source line that Python adds."""
    print(f"{PROG}: warning: {_one_line(Exception(str(message)))}", file=sys.stderr)


def _check_out_path(args: argparse.Namespace) -> None:
    """Reject an --out that names a file where a folder is expected, or the reverse."""
    out = getattr(args, "out", None)
    if out is None:
        return
    wants_folder = args.command != "replace"
    if wants_folder and out.exists() and not out.is_dir():
        raise CommandError(f"--out {str(out)!r} is a file; give a folder for the {args.command} results")
    if not wants_folder and out.is_dir():
        raise CommandError(f"--out {str(out)!r} is a folder; give the path of the model file to write, such as {str(out / 'adapted.pt')!r}")


def _select_kernels(backend: str) -> None:
    """Select the activation kernels; "auto" builds the native ones now, not mid-epoch."""
    from .activations import native
    from .activations.kernels import set_backend

    if backend != "auto":
        set_backend(backend)
        return
    started = time.perf_counter()
    try:
        native.load()
    except native.NativeBuildError as error:
        print(f"{PROG}: warning: using the eager activation kernels: {_one_line(error)}", file=sys.stderr)
        set_backend("eager")
        return
    seconds = time.perf_counter() - started
    if seconds > 5:
        print(f"{PROG}: built the fused C++ activation kernels in {seconds:.0f} s; later runs reuse them", file=sys.stderr)
    set_backend("native")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``reactivate`` command with ``argv`` (default: ``sys.argv[1:]``).

    Returns:
        The exit status: 0 on success, 1 for an error in the run, 2 for invalid
        command-line usage.
    """
    from .activations.kernels import get_backend, set_backend
    from .activations.native import NativeBuildError
    from .data import DatasetError
    from .training.errors import TrainingDivergedError

    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        _check_out_path(args)
        previous_backend = get_backend()
        # Only training runs long enough to pay back the one-time native
        # build; the other commands run a few forward passes.
        if args.command in _TRAINING_COMMANDS:
            _select_kernels(args.kernels)
            from .training.memory import keep_freed_memory

            keep_freed_memory()
        try:
            with warnings.catch_warnings():
                warnings.showwarning = _show_warning
                return _COMMANDS[args.command](args)
        finally:
            set_backend(previous_backend)
    except SystemExit as exit_request:  # --help and --version
        code = exit_request.code
        if code is None:
            return 0
        if isinstance(code, int):
            return code
        return _EXIT_ERROR
    except _UsageError as error:
        print(f"{PROG}: error: {_one_line(error)}", file=sys.stderr)
        return _EXIT_USAGE
    except (ValueError, DatasetError, TrainingDivergedError, NativeBuildError, FileNotFoundError, IsADirectoryError, PermissionError) as error:
        print(f"{PROG}: error: {_one_line(error)}", file=sys.stderr)
        return _EXIT_ERROR
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader of standard output (such as `head`) exited. Point stdout
        # at /dev/null so the interpreter's final flush does not fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return _EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
