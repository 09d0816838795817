"""Published numbers and the table writers."""

from __future__ import annotations

import csv
import io

import pytest

from reactivate.experiments.published import (
    BASES,
    PUBLISHED_RESULTS,
    TABLES,
    VARIANTS,
    published_result,
    variant_label,
)
from reactivate.experiments.tables import (
    CSV_COLUMNS,
    ResultRow,
    table_csv,
    table_markdown,
    write_tables,
)


def _rows(bases=BASES):
    return [
        ResultRow(base, variant, 90.0 + index, 10 + index, None if variant == "replaced" else 1.5)
        for base in bases
        for index, variant in enumerate(VARIANTS)
    ]


def test_published_covers_every_base_and_variant():
    keys = {(row.base, row.variant) for row in PUBLISHED_RESULTS}
    assert keys == {(base, variant) for base in BASES for variant in VARIANTS}
    assert published_result("relu", "finetuned").accuracy == 82.64
    assert published_result("relu", "finetuned").best_epoch == 148
    assert published_result("sigmoid", "replaced").train_minutes is None


def test_published_unknown_row_raises():
    with pytest.raises(ValueError, match="base='gelu'"):
        published_result("gelu", "reference")


def test_tables_split_bases_by_family():
    assert TABLES == {1: ("relu", "silu"), 2: ("tanh", "sigmoid")}
    assert variant_label("relu", "finetuned") == "AHAF, replaced + fine-tuned"
    assert variant_label("tanh", "scratch") == "fuzzy from scratch"


def test_table_csv_rows_and_difference():
    text = table_csv(_rows(), 1)
    records = list(csv.DictReader(io.StringIO(text)))
    assert tuple(records[0]) == CSV_COLUMNS
    assert [(r["base"], r["variant"]) for r in records] == [(b, v) for b in ("relu", "silu") for v in VARIANTS]
    first = records[0]
    assert float(first["accuracy"]) == 90.0
    assert float(first["paper_accuracy"]) == 82.41
    assert float(first["accuracy_diff"]) == pytest.approx(90.0 - 82.41)
    replaced = next(r for r in records if r["variant"] == "replaced")
    assert replaced["train_minutes"] == ""
    assert replaced["paper_train_minutes"] == ""


def test_table_markdown_layout():
    text = table_markdown(_rows(), 2)
    lines = text.strip().splitlines()
    assert lines[0].startswith("| base | variant | accuracy % | best epoch | train time, min")
    assert len(lines) == 2 + 8
    assert "| Tanh | fuzzy, replaced | 92.00 | 12 | – | 79.97 | +12.03 |" in text


def test_write_tables_only_measured_tables(tmp_path):
    written = write_tables(_rows(("silu",)), tmp_path, dataset="digits", notes=["one note"])
    assert sorted(written) == ["table1.csv", "tables.md"]
    markdown = (tmp_path / "tables.md").read_text()
    assert "Table 1." in markdown
    assert "Table 2." not in markdown
    assert "- one note" in markdown
    assert not any(path.name.endswith(".tmp") for path in tmp_path.iterdir())


def test_table_number_invalid():
    with pytest.raises(ValueError, match="table=3"):
        table_csv(_rows(), 3)
