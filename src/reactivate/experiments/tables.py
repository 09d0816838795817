"""Tables of measured results beside the published numbers of Bodyanskiy &
Kostiuk, "Using Adaptive Activation Functions in Pre-Trained Artificial Neural
Network Models" (ICST 2023), called "the paper" below.

The layout follows the paper: one row per base and variant with the test
accuracy in percent, the best epoch and the training time in minutes. Each
measured row is followed by the paper's value and the difference
(measured minus published). Table 1 contains ReLU and SiLU (AHAF in every
layer), Table 2 Tanh and Sigmoid (fuzzy F-neuron in the fully connected
layer). Files are written to a temporary file in the same folder and then
renamed, so a failure never leaves a half-written table.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Sequence

from ..atomic_files import atomic_write_text
from .published import (
    TABLES,
    VARIANTS,
    base_label,
    published_result,
    variant_label,
)

__all__ = [
    "ResultRow",
    "CSV_COLUMNS",
    "table_rows",
    "table_csv",
    "table_markdown",
    "tables_markdown",
    "write_text_atomic",
    "write_tables",
]

CSV_COLUMNS: tuple[str, ...] = (
    "table",
    "base",
    "variant",
    "label",
    "accuracy",
    "best_epoch",
    "train_minutes",
    "paper_accuracy",
    "accuracy_diff",
    "paper_best_epoch",
    "paper_train_minutes",
)


@dataclass(frozen=True)
class ResultRow:
    """One measured result of the experiment matrix.

    Attributes:
        base: torch name of the reference activation (``"relu"``, ...).
        variant: ``"reference"``, ``"scratch"``, ``"replaced"`` or
            ``"finetuned"``.
        accuracy: test accuracy in percent.
        best_epoch: epoch of the best test accuracy (1-based, counted across
            pre-training and fine-tuning).
        train_minutes: wall-clock training time in minutes; ``None`` for a
            variant that is not trained.
    """

    base: str
    variant: str
    accuracy: float
    best_epoch: int
    train_minutes: float | None

    def to_dict(self) -> dict:
        return asdict(self)



def _format_number(value: float | int | None, digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, int):
        return str(value)
    return f"{value:.{digits}f}"


def _format_diff(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:+.2f}"


def table_rows(rows: Iterable[ResultRow], table: int) -> list[dict]:
    """Merge measured rows of one table with the paper's numbers.

    Rows come out in the paper's order (base, then variant); bases with no
    measured row are left out.

    Args:
        rows: measured results; rows of other tables are ignored.
        table: 1 (ReLU, SiLU) or 2 (Tanh, Sigmoid).

    Returns:
        One dict per row with the keys of :data:`CSV_COLUMNS`.
    """
    if table not in TABLES:
        raise ValueError(f"table={table!r} is invalid; the paper has tables {sorted(TABLES)}")
    by_key = {(row.base, row.variant): row for row in rows}
    merged = []
    for base in TABLES[table]:
        for variant in VARIANTS:
            row = by_key.get((base, variant))
            if row is None:
                continue
            paper = published_result(base, variant)
            merged.append(
                {
                    "table": table,
                    "base": base,
                    "variant": variant,
                    "label": variant_label(base, variant),
                    "accuracy": round(row.accuracy, 4),
                    "best_epoch": row.best_epoch,
                    "train_minutes": None if row.train_minutes is None else round(row.train_minutes, 4),
                    "paper_accuracy": paper.accuracy,
                    "accuracy_diff": round(row.accuracy - paper.accuracy, 4),
                    "paper_best_epoch": paper.best_epoch,
                    "paper_train_minutes": paper.train_minutes,
                }
            )
    return merged


def table_csv(rows: Iterable[ResultRow], table: int) -> str:
    """Return one table as CSV text with the header :data:`CSV_COLUMNS`.

    A missing training time is an empty field.
    """
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for merged in table_rows(rows, table):
        writer.writerow({key: "" if value is None else value for key, value in merged.items()})
    return buffer.getvalue()


def table_markdown(rows: Iterable[ResultRow], table: int) -> str:
    """Return one table in Markdown, the paper's columns beside the measured ones."""
    lines = [
        "| base | variant | accuracy % | best epoch | train time, min "
        "| paper accuracy % | difference | paper best epoch | paper train time, min |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for merged in table_rows(rows, table):
        cells = [
            base_label(merged["base"]),
            merged["label"],
            _format_number(merged["accuracy"]),
            _format_number(merged["best_epoch"]),
            _format_number(merged["train_minutes"]),
            _format_number(merged["paper_accuracy"]),
            _format_diff(merged["accuracy_diff"]),
            _format_number(merged["paper_best_epoch"]),
            _format_number(merged["paper_train_minutes"]),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


_TABLE_TITLES = {
    1: "Table 1. ReLU and SiLU models; AHAF replaces the activation in every layer",
    2: (
        "Table 2. Tanh and Sigmoid models; the convolutional layers keep the "
        "original function and the fully connected layer gets an F-neuron "
        "activation (18 membership functions on [-4, 4])"
    ),
}


def tables_markdown(rows: Sequence[ResultRow], *, dataset: str, notes: Sequence[str] = ()) -> str:
    """Return both tables as one Markdown document.

    Args:
        rows: measured results of any bases.
        dataset: name of the dataset the rows were measured on; the paper's
            numbers are always CIFAR-10 test accuracy.
        notes: extra lines printed under the heading, such as epoch counts.
    """
    parts = [f"# Results on {dataset} beside the paper's CIFAR-10 numbers", ""]
    parts += [
        "Accuracy is test accuracy in percent at the best epoch. The best epoch "
        "is counted across pre-training and fine-tuning. The difference column is "
        "measured minus published accuracy, in percentage points.",
        "",
    ]
    if dataset != "cifar10":
        parts += [
            f"The paper's numbers were measured on CIFAR-10, so beside {dataset} "
            "results they show the layout, not a target.",
            "",
        ]
    for note in notes:
        parts.append(f"- {note}")
    if notes:
        parts.append("")
    measured_bases = {row.base for row in rows}
    for number, bases in TABLES.items():
        if not measured_bases.intersection(bases):
            continue
        parts += [f"## {_TABLE_TITLES[number]}", "", table_markdown(rows, number)]
    return "\n".join(parts)


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file and a rename.

    Readers see either the old file or the whole new one, never a part.
    """
    return atomic_write_text(path, text)


def write_tables(
    rows: Sequence[ResultRow],
    out_dir: str | os.PathLike,
    *,
    dataset: str,
    notes: Sequence[str] = (),
) -> dict[str, Path]:
    """Write ``tables.md``, ``table1.csv`` and ``table2.csv`` into ``out_dir``.

    A CSV file is written only for a table with at least one measured base.
    Every text is built before the first file is written.

    Returns:
        The written paths by file name.
    """
    out_dir = Path(out_dir)
    texts = {"tables.md": tables_markdown(rows, dataset=dataset, notes=notes)}
    measured_bases = {row.base for row in rows}
    for number, bases in TABLES.items():
        if measured_bases.intersection(bases):
            texts[f"table{number}.csv"] = table_csv(rows, number)
    return {name: write_text_atomic(out_dir / name, text) for name, text in texts.items()}
