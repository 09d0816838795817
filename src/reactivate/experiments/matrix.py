"""The experiment matrix of Bodyanskiy & Kostiuk, "Using Adaptive Activation
Functions in Pre-Trained Artificial Neural Network Models" (ICST 2023), called
"the paper" below: plan, run, resume.

Four reference KerasNet models (ReLU, SiLU, Tanh, Sigmoid in every layer) and
three derived variants of each:

* ``scratch``: the adaptive architecture trained from a fresh start for as
  many epochs as the reference;
* ``replaced``: the trained reference with its activations replaced and no
  training; its best epoch is the reference's last epoch;
* ``finetuned``: the replaced model trained for ``tune_epochs`` more epochs
  with only the activation parameters trainable. Epoch numbers continue from
  pre-training, and its best epoch is counted across both stages.

ReLU and SiLU get AHAF in every layer. Tanh and Sigmoid keep the original in
the convolutional layers and get an F-neuron activation (18 membership
functions on [-4, 4]) in the fully connected layer only.

Each step writes into its own run folder ``<out>/runs/<base>/<variant>/``:
the trainer's files (``checkpoint.pt``, ``history.csv``, ``best.pt``,
``final.pt``...) for trained steps, ``model.pt`` for the replaced model, and
last ``step.json``, which marks the step as finished. A rerun skips finished steps whose recorded options match, and
training resumes from the checkpoint that the trainer writes every epoch.
"""

from __future__ import annotations

import json
import math
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch import nn

from .published import BASES, TABLES, base_label, family_label
from .tables import ResultRow, write_tables, write_text_atomic

__all__ = [
    "DEFAULT_EPOCHS",
    "DEFAULT_TUNE_EPOCHS",
    "MatrixOptions",
    "MatrixStep",
    "MatrixResult",
    "ExperimentError",
    "adaptive_include",
    "plan_matrix",
    "run_matrix",
]

DEFAULT_EPOCHS: dict[str, int] = {"digits": 15, "cifar10": 100}
"""Pre-training epochs when none are given: the paper's 100 on CIFAR-10, and
a count for the small offline digits set that runs the whole matrix in a few
minutes on a 2-core CPU. Other datasets get 100."""

DEFAULT_TUNE_EPOCHS: dict[str, int] = {"digits": 5, "cifar10": 50}
"""Fine-tuning epochs when none are given: the paper's 50 on CIFAR-10, fewer
on digits to keep the offline run short. Other datasets get 50."""

_STEP_FILE = "step.json"
_TRAINED_MODEL_FILE = "final.pt"
_REPLACED_MODEL_FILE = "model.pt"


def _model_file(run_dir: Path, variant: str) -> Path:
    """Return the whole-model file a finished step leaves in its run folder."""
    return run_dir / (_REPLACED_MODEL_FILE if variant == "replaced" else _TRAINED_MODEL_FILE)


class ExperimentError(ValueError):
    """Raised for invalid experiment options or a run folder that does not fit them."""


def adaptive_include(base: str) -> str | None:
    """Return the module-name pattern of the activations the paper replaces.

    ``None`` means every activation (ReLU, SiLU); ``"ffn_act"`` selects the
    fully connected layer's activation only (Tanh, Sigmoid).
    """
    if base not in BASES:
        raise ExperimentError(f"unknown base {base!r}; choose from {', '.join(BASES)}")
    return None if family_label(base) == "AHAF" else r"ffn_act"


@dataclass
class MatrixOptions:
    """Options of one run of the experiment matrix.

    Attributes:
        dataset: dataset name for :func:`reactivate.data.load_dataset`.
            Default: ``"digits"``.
        bases: reference activations to run. Default: all four.
        epochs: pre-training epochs of the reference and from-scratch models;
            ``None`` takes :data:`DEFAULT_EPOCHS` for the dataset.
        tune_epochs: activation-only fine-tuning epochs; ``None`` takes
            :data:`DEFAULT_TUNE_EPOCHS` for the dataset.
        batch_size: training batch per process. Default: 64.
        lr: RMSprop learning rate. Default: 1e-4.
        seed: seed of model initialisation, shuffling and augmentation.
            Default: 42.
        train_subset: train on this many random training images; ``None``
            uses all.
        test_subset: evaluate on this many test images; ``None`` uses all.
        data_dir: dataset folder. Default: the loader's default.
        download: allow downloading a missing dataset. Default: False.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
        granularity: parameter granularity of the adaptive activations.
            Default: ``"layer"``.
        augment: random flips and translations of training batches.
            Default: True.
        progress: show per-epoch progress bars. Default: True.
    """

    dataset: str = "digits"
    bases: tuple[str, ...] = BASES
    epochs: int | None = None
    tune_epochs: int | None = None
    batch_size: int = 64
    lr: float = 1e-4
    seed: int = 42
    train_subset: int | None = None
    test_subset: int | None = None
    data_dir: str | None = None
    download: bool = False
    device: str = "auto"
    granularity: str = "layer"
    augment: bool = True
    progress: bool = True

    def __post_init__(self) -> None:
        self.bases = tuple(self.bases)
        if not self.bases:
            raise ExperimentError("bases is empty; choose one or more of " + ", ".join(BASES))
        unknown = [base for base in self.bases if base not in BASES]
        if unknown:
            raise ExperimentError(f"unknown base {unknown[0]!r}; choose from {', '.join(BASES)}")
        if len(set(self.bases)) != len(self.bases):
            raise ExperimentError(f"bases={list(self.bases)} repeats a base; name each base once")
        if self.epochs is None:
            self.epochs = DEFAULT_EPOCHS.get(self.dataset, 100)
        if self.tune_epochs is None:
            self.tune_epochs = DEFAULT_TUNE_EPOCHS.get(self.dataset, 50)
        _check_count("epochs", self.epochs, minimum=1)
        _check_count("tune_epochs", self.tune_epochs, minimum=0)
        _check_count("batch_size", self.batch_size, minimum=1)
        for name in ("train_subset", "test_subset"):
            if getattr(self, name) is not None:
                _check_count(name, getattr(self, name), minimum=1)
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise ExperimentError(f"lr={self.lr!r} is invalid; give a positive learning rate such as 1e-4")

    def training_key(self) -> dict[str, Any]:
        """Return the options a finished step's results depend on."""
        keys = (
            "dataset", "epochs", "batch_size", "lr", "seed", "train_subset", "test_subset", "granularity", "augment",
        )
        return {key: getattr(self, key) for key in keys}


def _check_count(name: str, value: Any, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ExperimentError(f"{name}={value!r} is invalid; give an integer of at least {minimum}")


@dataclass(frozen=True)
class MatrixStep:
    """One step of the plan: a base, a variant and its run folder."""

    base: str
    variant: str
    run_dir: Path
    needs: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return f"{self.base}/{self.variant}"


@dataclass
class MatrixResult:
    """Everything a finished matrix run produced.

    Attributes:
        rows: one measured row per base and variant.
        steps: per-step details as stored in each ``result.json``.
        files: written tables and figures by a short name, as paths
            relative to the output folder.
        skipped: names (``"base/variant"``) of steps found finished.
        seconds: wall-clock time of this invocation.
    """

    rows: list[ResultRow]
    steps: dict[str, dict[str, Any]]
    files: dict[str, str] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    seconds: float = 0.0


def plan_matrix(options: MatrixOptions, out_dir: str | os.PathLike) -> list[MatrixStep]:
    """List the steps of the matrix in the order they run.

    Each base contributes ``reference``, ``scratch``, ``replaced`` (needs the
    reference) and ``finetuned`` (needs the replaced model).
    """
    runs = Path(out_dir) / "runs"
    steps = []
    for base in options.bases:
        folder = runs / base
        steps += [
            MatrixStep(base, "reference", folder / "reference"),
            MatrixStep(base, "scratch", folder / "scratch"),
            MatrixStep(base, "replaced", folder / "replaced", needs=(f"{base}/reference",)),
            MatrixStep(base, "finetuned", folder / "finetuned", needs=(f"{base}/replaced",)),
        ]
    return steps


# -- helpers ---------------------------------------------------------------


def _percent(accuracy: float) -> float:
    """Convert an accuracy fraction in [0, 1] to percent."""
    return 100.0 * float(accuracy)


def _barrier() -> None:
    from ..training.distributed import barrier

    barrier()


def _is_main() -> bool:
    from ..training.distributed import current_dist_info

    return current_dist_info().is_main


def _write_json(path: Path, data: dict[str, Any]) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def _read_json(path: Path) -> dict[str, Any]:
    with open(path, encoding="utf-8") as stream:
        return json.load(stream)


def _history_records(history: Sequence[Any]) -> list[dict[str, Any]]:
    return [
        {
            "epoch": int(record.epoch),
            "test_accuracy": _percent(record.test_accuracy),
            "test_loss": float(record.test_loss),
            "train_loss": float(record.train_loss_mean),
        }
        for record in history
    ]


def _best(records: Sequence[dict[str, Any]]) -> tuple[float, int]:
    """Return the best test accuracy and its epoch; the first epoch wins a tie."""
    best = max(records, key=lambda record: (record["test_accuracy"], -record["epoch"]))
    return best["test_accuracy"], best["epoch"]


def _adaptive_modules(model: nn.Module) -> dict[str, nn.Module]:
    from ..activations import AdaptiveActivation

    return {name: module for name, module in model.named_modules() if isinstance(module, AdaptiveActivation)}


class _Runner:
    """Run the steps of one matrix, sharing the loaded dataset."""

    def __init__(self, options: MatrixOptions, out_dir: Path, log: Callable[[str], None]) -> None:
        self.options = options
        self.out_dir = out_dir
        self.log = log
        self._data = None

    # -- shared pieces -----------------------------------------------------

    def load_data(self) -> None:
        """Load the dataset on every process; rank 0 goes first so only it downloads."""
        from ..data import load_dataset

        options = self.options

        def load():
            return load_dataset(
                options.dataset,
                options.data_dir,
                download=options.download,
                train_subset=options.train_subset,
                test_subset=options.test_subset,
                seed=options.seed,
            )

        if _is_main():
            self._data = load()
        _barrier()
        if self._data is None:
            self._data = load()

    @property
    def data(self):
        if self._data is None:
            raise RuntimeError("load_data() must run before the steps")
        return self._data

    def new_model(self, base: str) -> nn.Module:
        from ..models import KerasNet

        channels, height, width = self.data.image_shape
        torch.manual_seed(self.options.seed)
        return KerasNet(
            in_channels=channels,
            num_classes=self.data.num_classes,
            image_size=height if height == width else (height, width),
            cnn_activation=base,
        )

    def replace(self, model: nn.Module, base: str):
        from .. import replace_activations

        include = adaptive_include(base)
        # A few real test images let the engine check that the rewritten
        # model computes what the original did, and record input ranges.
        example = self.data.test.images[:8]
        parameter = next(model.parameters())
        return replace_activations(
            model,
            "paper",
            example_input=example.to(parameter.device),
            granularity=self.options.granularity,
            include=None if include is None else [include],
        )

    def train_config(self, **overrides: Any):
        from ..training import TrainConfig

        options = self.options
        settings = {
            "epochs": options.epochs,
            "batch_size": options.batch_size,
            "lr": options.lr,
            "seed": options.seed,
            "device": options.device,
            "progress": options.progress,
            "augment": options.augment,
        }
        settings.update(overrides)
        return TrainConfig(**settings)

    def save(self, step: MatrixStep, model: nn.Module | None, record: dict[str, Any]) -> dict[str, Any]:
        """Write the model (when the trainer did not) and then the file that marks ``step`` finished."""
        from ..training import save_model

        record = {
            "base": step.base,
            "variant": step.variant,
            **record,
            "options": self.options.training_key(),
        }
        if step.variant == "finetuned":
            record["options"]["tune_epochs"] = self.options.tune_epochs
        if _is_main():
            if model is not None:
                extra = {"epoch": record["best_epoch"], "experiment": {"base": step.base, "variant": step.variant}}
                save_model(_model_file(step.run_dir, step.variant), model, extra=extra)
            _write_json(step.run_dir / _STEP_FILE, record)
        _barrier()
        return record

    def expected_options(self, step: MatrixStep) -> dict[str, Any]:
        expected = self.options.training_key()
        if step.variant == "finetuned":
            expected["tune_epochs"] = self.options.tune_epochs
        return expected

    def finished(self, step: MatrixStep) -> dict[str, Any] | None:
        """Return the stored result of a finished step, or None."""
        path = step.run_dir / _STEP_FILE
        if not (path.is_file() and _model_file(step.run_dir, step.variant).is_file()):
            return None
        record = _read_json(path)
        expected = self.expected_options(step)
        stored = record.get("options", {})
        if stored != expected:
            changed = sorted(key for key in expected if stored.get(key) != expected[key])
            detail = ", ".join(f"{key}={stored.get(key)!r} there, {expected[key]!r} now" for key in changed)
            raise ExperimentError(
                f"run folder {str(step.run_dir)!r} contains a finished run with other options ({detail}); "
                "choose another --out folder or delete that run folder"
            )
        return record

    # -- steps -------------------------------------------------------------

    def run_reference(self, step: MatrixStep) -> dict[str, Any]:
        return self.train_from_scratch(step, self.new_model(step.base))

    def run_scratch(self, step: MatrixStep) -> dict[str, Any]:
        model = self.new_model(step.base)
        report = self.replace(model, step.base)
        if _is_main():
            write_text_atomic(step.run_dir / "replacement.md", report.to_markdown())
        return self.train_from_scratch(step, model)

    def train_from_scratch(self, step: MatrixStep, model: nn.Module) -> dict[str, Any]:
        """Train a fresh model for the pre-training epochs and record the step."""
        from ..training import fit

        result = fit(model, self.data, self.train_config(), step.run_dir)
        history = _history_records(result.history)
        accuracy, epoch = _best(history)
        return self.save(
            step,
            None,
            {
                "accuracy": accuracy,
                "best_epoch": epoch,
                "train_seconds": float(result.train_seconds),
                "final_accuracy": history[-1]["test_accuracy"],
                "last_epoch": history[-1]["epoch"],
                "history": history,
            },
        )

    def run_replaced(self, step: MatrixStep, reference: dict[str, Any]) -> dict[str, Any]:
        from ..training import evaluate, load_model

        model, _ = load_model(_model_file(self.reference_dir(step.base), "reference"))
        device = self.device()
        model.to(device)
        before = evaluate(model, self.data.test, device=device)
        report = self.replace(model, step.base)
        after = evaluate(model, self.data.test, device=device)
        if _is_main():
            write_text_atomic(step.run_dir / "replacement.md", report.to_markdown())
        agreement = float((before.predictions.cpu() == after.predictions.cpu()).double().mean())
        return self.save(
            step,
            model,
            {
                "accuracy": _percent(after.accuracy),
                "best_epoch": reference["last_epoch"],
                "train_seconds": None,
                "reference_final_accuracy": _percent(before.accuracy),
                "test_loss": float(after.loss),
                "reference_test_loss": float(before.loss),
                "prediction_agreement": agreement,
                "predictions_unchanged": bool(agreement == 1.0),
                "replaced_sites": [entry.name for entry in report.replaced],
            },
        )

    def run_finetuned(self, step: MatrixStep, reference: dict[str, Any], replaced: dict[str, Any]) -> dict[str, Any]:
        from ..training import fit, load_model

        model, _ = load_model(_model_file(step.run_dir.parent / "replaced", "replaced"))
        config = self.train_config(
            epochs=self.options.tune_epochs,
            trainable="activations",
            epoch_offset=reference["last_epoch"],
        )
        result = fit(model, self.data, config, step.run_dir)
        history = _history_records(result.history)
        # The fine-tuned row reports what the adapted model reached: the best
        # of its start (the replaced model at the reference's last epoch) and
        # the fine-tuning epochs, numbered on from pre-training. The
        # reference's own earlier epochs do not count, because they belong
        # to another model.
        start = {"epoch": reference["last_epoch"], "test_accuracy": replaced["accuracy"]}
        accuracy, epoch = _best([start] + history)
        return self.save(
            step,
            None,
            {
                "accuracy": accuracy,
                "best_epoch": epoch,
                "train_seconds": float(result.train_seconds),
                "final_accuracy": history[-1]["test_accuracy"] if history else replaced["accuracy"],
                "last_epoch": history[-1]["epoch"] if history else reference["last_epoch"],
                "best_finetune_accuracy": _best(history)[0] if history else None,
                "history": history,
            },
        )

    def reference_dir(self, base: str) -> Path:
        return self.out_dir / "runs" / base / "reference"

    def device(self) -> torch.device:
        from ..training.distributed import current_dist_info

        if self.options.device != "auto":
            return torch.device(self.options.device)
        return current_dist_info().device


# -- figures -----------------------------------------------------------------


def _training_panels(records: dict[str, dict[str, Any]], bases: Sequence[str]) -> dict[str, dict[str, tuple[list, list]]]:
    panels = {}
    for base in bases:
        family = family_label(base)
        reference = records[f"{base}/reference"]
        scratch = records[f"{base}/scratch"]
        replaced = records[f"{base}/replaced"]
        finetuned = records[f"{base}/finetuned"]
        # The fine-tuning curve starts at the replaced model, placed at the
        # reference's last epoch, so it continues the reference curve.
        tune_epochs = [reference["last_epoch"]] + [r["epoch"] for r in finetuned["history"]]
        tune_values = [replaced["accuracy"]] + [r["test_accuracy"] for r in finetuned["history"]]
        panels[base_label(base)] = {
            "reference": ([r["epoch"] for r in reference["history"]], [r["test_accuracy"] for r in reference["history"]]),
            f"{family} from scratch": ([r["epoch"] for r in scratch["history"]], [r["test_accuracy"] for r in scratch["history"]]),
            f"{family}, replaced + fine-tuned": (tune_epochs, tune_values),
        }
    return panels


def _write_figures(out_dir: Path, options: MatrixOptions, records: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Draw the paper's figures from the finished run folders (rank 0 only)."""
    from .. import plots
    from ..activations import FNeuronActivation
    from ..training import load_model

    figures = out_dir / "figures"
    written: dict[str, str] = {}

    def record(name: str, path: Path) -> None:
        written[name] = path.relative_to(out_dir).as_posix()

    fuzzy_tanh = None
    for base in options.bases:
        runs = out_dir / "runs" / base
        replaced_model, _ = load_model(_model_file(runs / "replaced", "replaced"))
        finetuned_model, _ = load_model(_model_file(runs / "finetuned", "finetuned"))
        replaced = _adaptive_modules(replaced_model)
        finetuned = _adaptive_modules(finetuned_model)
        label, family = base_label(base), family_label(base)
        for stage, tuned, text in (("replaced", None, "right after replacement"), ("finetuned", finetuned, "after fine-tuning")):
            path = figures / f"activations_{base}_{stage}.png"
            plots.plot_activation_forms(replaced, tuned, title=f"{label} model: {family} {text}", path=path)
            record(f"activations_{base}_{stage}", path)
        if base == "tanh" and "ffn_act" in replaced:
            fuzzy_tanh = replaced["ffn_act"]
    for number, table_bases in TABLES.items():
        bases = [base for base in table_bases if base in options.bases]
        if not bases:
            continue
        name = f"training_curves_table{number}"
        plots.plot_training_curves(
            _training_panels(records, bases),
            title=f"Test accuracy per epoch ({options.dataset})",
            path=figures / f"{name}.png",
        )
        record(name, figures / f"{name}.png")
    if fuzzy_tanh is None:
        fuzzy_tanh = FNeuronActivation("tanh", interval=(-4.0, 4.0), num_functions=18)
    plots.plot_squared_error(fuzzy_tanh, path=figures / "fuzzy_tanh_squared_error.png")
    record("fuzzy_tanh_squared_error", figures / "fuzzy_tanh_squared_error.png")
    return written


def _previous_figures(out_dir: Path, options: MatrixOptions) -> dict[str, str] | None:
    """Return the figures of an earlier run of the same bases when every one still exists."""
    path = out_dir / "results.json"
    if not path.is_file():
        return None
    try:
        previous = _read_json(path)
    except (OSError, ValueError):
        return None
    figures = previous.get("figures")
    if previous.get("options", {}).get("bases") != list(options.bases):
        return None
    if not isinstance(figures, dict) or not figures:
        return None
    if not all((out_dir / relative).is_file() for relative in figures.values()):
        return None
    return figures


# -- the whole matrix ----------------------------------------------------------


def _row(record: dict[str, Any]) -> ResultRow:
    seconds = record.get("train_seconds")
    return ResultRow(
        base=record["base"],
        variant=record["variant"],
        accuracy=float(record["accuracy"]),
        best_epoch=int(record["best_epoch"]),
        train_minutes=None if seconds is None else seconds / 60.0,
    )


def run_matrix(
    options: MatrixOptions,
    out_dir: str | os.PathLike,
    *,
    log: Callable[[str], None] | None = None,
) -> MatrixResult:
    """Run (or resume) the experiment matrix and write tables, figures and results.

    Steps whose ``result.json`` exists with the same options are skipped.
    Under ``torchrun`` every process trains and only rank 0 writes files and
    logs; call :func:`reactivate.training.distributed.setup_distributed`
    before this function.

    Args:
        options: what to run.
        out_dir: output folder; it receives ``tables.md``, ``table1.csv``,
            ``table2.csv``, ``results.json``, ``figures/*.png`` and
            ``runs/<base>/<variant>/``.
        log: receives one line per step event; rank 0 only. Default: no
            logging.

    Returns:
        The measured rows, per-step records and written files.

    Raises:
        ExperimentError: a run folder contains results made with other options.
        ValueError: from the data loader (for example a missing dataset
            without ``download``) or the trainer.

    Example::

        result = run_matrix(MatrixOptions(dataset="digits", epochs=2, tune_epochs=1), "results")
        print(result.rows[0])
    """
    started = time.perf_counter()
    out_dir = Path(out_dir)
    main = _is_main()
    say = (log if (log is not None and main) else (lambda line: None))
    runner = _Runner(options, out_dir, say)
    runner.load_data()
    records: dict[str, dict[str, Any]] = {}
    skipped: list[str] = []
    for step in plan_matrix(options, out_dir):
        record = runner.finished(step)
        if record is not None:
            records[step.name] = record
            skipped.append(step.name)
            say(f"[{step.name}] skipped, finished earlier: {record['accuracy']:.2f}% at epoch {record['best_epoch']}")
            continue
        say(f"[{step.name}] running")
        if step.variant == "reference":
            record = runner.run_reference(step)
        elif step.variant == "scratch":
            record = runner.run_scratch(step)
        elif step.variant == "replaced":
            record = runner.run_replaced(step, records[f"{step.base}/reference"])
        else:
            record = runner.run_finetuned(step, records[f"{step.base}/reference"], records[f"{step.base}/replaced"])
        records[step.name] = record
        minutes = record.get("train_seconds")
        timing = "" if minutes is None else f", {minutes / 60.0:.2f} min"
        say(f"[{step.name}] done: {record['accuracy']:.2f}% at epoch {record['best_epoch']}{timing}")

    rows = [_row(records[step.name]) for step in plan_matrix(options, out_dir)]
    result = MatrixResult(rows=rows, steps=records, skipped=skipped)
    if main:
        from ..training.distributed import current_dist_info

        world_size = current_dist_info().world_size
        data = runner.data
        notes = [
            f"dataset {options.dataset}: {len(data.train)} training and {len(data.test)} test images",
            f"pre-training epochs: {options.epochs}, fine-tuning epochs: {options.tune_epochs}, "
            f"batch per process: {options.batch_size}, processes: {world_size}, lr: {options.lr:g}, "
            f"seed: {options.seed}",
            f"adaptive parameter granularity: {options.granularity}",
            "replaced rows are evaluated without training at the reference's last epoch; fine-tuned rows "
            "give the best of the replaced model and its fine-tuning epochs, numbered on from pre-training "
            "as in the paper",
            f"training times measured on {platform.machine()} with torch {torch.__version__}, "
            f"device {runner.device()}",
        ]
        figures = _previous_figures(out_dir, options) if len(skipped) == len(records) else None
        if figures is None:
            figures = _write_figures(out_dir, options, records)
        else:
            say("figures are up to date, skipped")
        tables = write_tables(rows, out_dir, dataset=options.dataset, notes=notes)
        result.files = {**{name: path.relative_to(out_dir).as_posix() for name, path in tables.items()}, **figures}
        result.seconds = time.perf_counter() - started
        summary = {
            "dataset": options.dataset,
            "options": asdict(options),
            "torch_version": torch.__version__,
            "device": str(runner.device()),
            "processes": world_size,
            "rows": [row.to_dict() for row in rows],
            "steps": records,
            "paper_figures": {
                "figure 1": figures.get("fuzzy_tanh_squared_error"),
                "figures 5-8": [figures[f"activations_{b}_replaced"] for b in options.bases],
                "figures 9-12": [figures[f"activations_{b}_finetuned"] for b in options.bases],
                "figures 13-14": [figures[k] for k in sorted(figures) if k.startswith("training_curves")],
            },
            "figures": figures,
            "files": result.files,
            "skipped_steps": skipped,
            "seconds": result.seconds,
        }
        _write_json(out_dir / "results.json", summary)
        result.files["results.json"] = "results.json"
    _barrier()
    result.seconds = time.perf_counter() - started
    return result
