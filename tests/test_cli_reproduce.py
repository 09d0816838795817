"""The ``reactivate reproduce`` command on the offline digits set, end to end."""

from __future__ import annotations

import contextlib
import csv
import io
import json

import pytest
import torch

from reactivate.activations import AdaptiveActivation
from reactivate.cli import main
from reactivate.data import load_dataset
from reactivate.experiments.published import BASES, VARIANTS
from reactivate.training import evaluate, load_model

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TRAIN_SUBSET = 64
TEST_SUBSET = 50
ARGS = [
    "reproduce", "--dataset", "digits", "--epochs", "1", "--tune-epochs", "1",
    "--train-subset", str(TRAIN_SUBSET), "--test-subset", str(TEST_SUBSET), "--quiet",
]


def _run(argv):
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(argv)
    return code, stdout.getvalue(), stderr.getvalue()


@pytest.fixture(scope="module")
def matrix(tmp_path_factory):
    out = tmp_path_factory.mktemp("reproduce")
    code, stdout, stderr = _run(ARGS + ["--out", str(out)])
    assert code == 0, stderr
    return out, stdout


def _activation_keys(model) -> set[str]:
    prefixes = [name for name, module in model.named_modules() if isinstance(module, AdaptiveActivation)]
    return {key for key in model.state_dict() if any(key.startswith(prefix + ".") for prefix in prefixes)}


def test_reproduce_writes_tables(matrix):
    out, stdout = matrix
    for name in ("tables.md", "table1.csv", "table2.csv", "results.json"):
        assert (out / name).is_file(), name
    rows = []
    for number in (1, 2):
        with open(out / f"table{number}.csv", newline="") as stream:
            rows += list(csv.DictReader(stream))
    assert {(row["base"], row["variant"]) for row in rows} == {(b, v) for b in BASES for v in VARIANTS}
    assert len(rows) == 16
    for row in rows:
        assert 0.0 <= float(row["accuracy"]) <= 100.0
        assert float(row["accuracy_diff"]) == pytest.approx(float(row["accuracy"]) - float(row["paper_accuracy"]), abs=1e-3)
        if row["variant"] == "replaced":
            assert row["train_minutes"] == ""
            assert int(row["best_epoch"]) == 1
        else:
            assert float(row["train_minutes"]) > 0
    markdown = (out / "tables.md").read_text()
    assert "## Table 1." in markdown
    assert "## Table 2." in markdown
    assert "| SiLU | AHAF, replaced + fine-tuned |" in markdown
    assert "Table 1." in stdout


def test_reproduce_writes_png_figures(matrix):
    out, _ = matrix
    results = json.loads((out / "results.json").read_text())
    figures = results["paper_figures"]
    paths = [figures["figure 1"], *figures["figures 5-8"], *figures["figures 9-12"], *figures["figures 13-14"]]
    assert len(paths) == 1 + 4 + 4 + 2
    for relative in paths:
        assert (out / relative).read_bytes()[:8] == PNG_SIGNATURE, relative
    assert not list(out.rglob("*.tmp"))


def test_reproduce_results_json(matrix):
    out, _ = matrix
    results = json.loads((out / "results.json").read_text())
    assert results["dataset"] == "digits"
    assert len(results["rows"]) == 16
    finetuned = results["steps"]["relu/finetuned"]
    # Fine-tuning epochs continue the pre-training count.
    assert [record["epoch"] for record in finetuned["history"]] == [2]
    assert finetuned["best_epoch"] in (1, 2)


def test_finetuned_row_is_adapted_model(matrix):
    out, _ = matrix
    steps = json.loads((out / "results.json").read_text())["steps"]
    for base in ("relu", "silu", "tanh", "sigmoid"):
        replaced = steps[f"{base}/replaced"]
        finetuned = steps[f"{base}/finetuned"]
        # The row reports the adapted model: its start after replacement or
        # a fine-tuning epoch, never an earlier epoch of the reference.
        reached = [replaced["accuracy"]] + [record["test_accuracy"] for record in finetuned["history"]]
        assert finetuned["accuracy"] == max(reached)
        assert finetuned["best_epoch"] >= steps[f"{base}/reference"]["last_epoch"]


def test_silu_replacement_keeps_predictions(matrix):
    out, _ = matrix
    runs = out / "runs" / "silu"
    reference, _ = load_model(runs / "reference" / "final.pt")
    replaced, _ = load_model(runs / "replaced" / "model.pt")
    assert not _activation_keys(reference)
    assert len(_activation_keys(replaced)) > 0
    data = load_dataset("digits", test_subset=TEST_SUBSET, seed=42)
    before = evaluate(reference, data.test)
    after = evaluate(replaced, data.test)
    assert torch.equal(before.predictions, after.predictions)
    assert after.accuracy == before.accuracy
    step = json.loads((runs / "replaced" / "step.json").read_text())
    assert step["predictions_unchanged"] is True


@pytest.mark.parametrize("base", BASES)
def test_finetune_changes_only_activations(matrix, base):
    out, _ = matrix
    runs = out / "runs" / base
    replaced, _ = load_model(runs / "replaced" / "model.pt")
    finetuned, _ = load_model(runs / "finetuned" / "final.pt")
    keys = _activation_keys(replaced)
    assert keys == _activation_keys(finetuned)
    before, after = replaced.state_dict(), finetuned.state_dict()
    assert before.keys() == after.keys()
    for key in before:
        if key not in keys:
            assert torch.equal(before[key], after[key]), key
    assert any(not torch.equal(before[key], after[key]) for key in keys)


def test_tanh_keeps_convolutional_activations(matrix):
    out, _ = matrix
    replaced, _ = load_model(out / "runs" / "tanh" / "replaced" / "model.pt")
    adaptive = [name for name, module in replaced.named_modules() if isinstance(module, AdaptiveActivation)]
    assert adaptive == ["ffn_act"]
    assert isinstance(replaced.cnn_act1, torch.nn.Tanh)


def test_rerun_skips_finished_steps(matrix):
    out, _ = matrix
    before = (out / "table1.csv").read_text() + (out / "table2.csv").read_text()
    stamps = {path: path.stat().st_mtime_ns for path in out.glob("runs/*/*/step.json")}
    code, stdout, stderr = _run(ARGS + ["--out", str(out)])
    assert code == 0, stderr
    assert stdout.count("] skipped") == 16
    assert "running" not in stdout
    assert "figures are up to date" in stdout
    after = (out / "table1.csv").read_text() + (out / "table2.csv").read_text()
    assert after == before
    assert stamps == {path: path.stat().st_mtime_ns for path in out.glob("runs/*/*/step.json")}


def test_rerun_with_other_options_fails(matrix):
    out, _ = matrix
    before = (out / "tables.md").read_text()
    argv = ARGS + ["--epochs", "2", "--out", str(out)]
    code, stdout, stderr = _run(argv)
    assert code == 1
    assert stderr.startswith("reactivate: error: run folder")
    assert "epochs=1 there, 2 now" in stderr
    assert len(stderr.strip().splitlines()) == 1
    assert (out / "tables.md").read_text() == before
