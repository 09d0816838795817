"""CIFAR-10 results published in the paper, as data.

Source: Bodyanskiy & Kostiuk, "Using Adaptive Activation Functions in
Pre-Trained Artificial Neural Network Models", ICST 2023. The paper trained
KerasNet on CIFAR-10 (100 epochs of pre-training, 50 of activation-only
fine-tuning) on a GTX 1650 Max-Q laptop GPU with PyTorch 1.13.1.

The paper reports two tables. Table 1 contains the bases whose activations become
AHAF in every layer (ReLU, SiLU). Table 2 contains the bases that keep their
original function in the convolutional layers and get a fuzzy F-neuron
activation in the fully connected layer (Tanh, Sigmoid).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "BASES",
    "VARIANTS",
    "TABLES",
    "PublishedResult",
    "PUBLISHED_RESULTS",
    "base_label",
    "published_result",
    "family_label",
    "table_of_base",
    "variant_label",
]

BASES: tuple[str, ...] = ("relu", "silu", "tanh", "sigmoid")
"""The four classic activations of the reference models, as torch names."""

VARIANTS: tuple[str, ...] = ("reference", "scratch", "replaced", "finetuned")
"""Rows per base: the reference model, the adaptive model trained from a fresh
start, the reference with its activations replaced (no training), and the
replaced model after activation-only fine-tuning."""

TABLES: dict[int, tuple[str, ...]] = {1: ("relu", "silu"), 2: ("tanh", "sigmoid")}
"""Bases of the paper's Table 1 (AHAF everywhere) and Table 2 (fuzzy FFN)."""

_FAMILY_LABELS = {"relu": "AHAF", "silu": "AHAF", "tanh": "fuzzy", "sigmoid": "fuzzy"}
_BASE_LABELS = {"relu": "ReLU", "silu": "SiLU", "tanh": "Tanh", "sigmoid": "Sigmoid"}


@dataclass(frozen=True)
class PublishedResult:
    """One row of the paper's results on the CIFAR-10 test set.

    Attributes:
        base: torch name of the reference model's activation.
        variant: one of :data:`VARIANTS`.
        accuracy: test accuracy in percent.
        best_epoch: epoch of the best test accuracy, counted across
            pre-training and fine-tuning.
        train_minutes: training time in minutes, ``None`` for the replaced
            model, which is not trained.
    """

    base: str
    variant: str
    accuracy: float
    best_epoch: int
    train_minutes: float | None


PUBLISHED_RESULTS: tuple[PublishedResult, ...] = (
    PublishedResult("relu", "reference", 82.41, 96, 17.41),
    PublishedResult("relu", "scratch", 82.46, 96, 24.78),
    PublishedResult("relu", "replaced", 82.17, 100, None),
    PublishedResult("relu", "finetuned", 82.64, 148, 9.13),
    PublishedResult("silu", "reference", 81.57, 98, 18.00),
    PublishedResult("silu", "scratch", 81.84, 98, 25.42),
    PublishedResult("silu", "replaced", 81.54, 100, None),
    PublishedResult("silu", "finetuned", 81.95, 143, 8.64),
    PublishedResult("tanh", "reference", 79.97, 100, 18.35),
    PublishedResult("tanh", "scratch", 81.04, 100, 21.22),
    PublishedResult("tanh", "replaced", 79.97, 100, None),
    PublishedResult("tanh", "finetuned", 80.34, 150, 8.11),
    PublishedResult("sigmoid", "reference", 60.17, 100, 18.63),
    PublishedResult("sigmoid", "scratch", 60.55, 100, 21.36),
    PublishedResult("sigmoid", "replaced", 60.43, 100, None),
    PublishedResult("sigmoid", "finetuned", 61.16, 147, 9.10),
)


def published_result(base: str, variant: str) -> PublishedResult:
    """Return the paper's row for ``base`` and ``variant``.

    Raises:
        ValueError: when the paper has no such row.
    """
    for row in PUBLISHED_RESULTS:
        if row.base == base and row.variant == variant:
            return row
    raise ValueError(
        f"the paper has no result for base={base!r}, variant={variant!r}; "
        f"bases: {', '.join(BASES)}; variants: {', '.join(VARIANTS)}"
    )


def family_label(base: str) -> str:
    """Return the paper's name of the adaptive family used for ``base``."""
    if base not in _FAMILY_LABELS:
        raise ValueError(f"unknown base {base!r}; the paper's bases are {', '.join(BASES)}")
    return _FAMILY_LABELS[base]


def table_of_base(base: str) -> int:
    """Return the number of the paper's table that contains ``base``."""
    for number, bases in TABLES.items():
        if base in bases:
            return number
    raise ValueError(f"unknown base {base!r}; the paper's bases are {', '.join(BASES)}")


def variant_label(base: str, variant: str) -> str:
    """Return a row label in the paper's wording, such as ``"AHAF, replaced"``."""
    family = family_label(base)
    labels = {
        "reference": "reference",
        "scratch": f"{family} from scratch",
        "replaced": f"{family}, replaced",
        "finetuned": f"{family}, replaced + fine-tuned",
    }
    if variant not in labels:
        raise ValueError(f"unknown variant {variant!r}; variants: {', '.join(VARIANTS)}")
    return labels[variant]


def base_label(base: str) -> str:
    """Return the display name of a base activation, such as ``"ReLU"``."""
    return _BASE_LABELS.get(base, base)
