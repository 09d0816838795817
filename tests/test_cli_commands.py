"""The single-step subcommands of ``reactivate`` and their error handling."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import subprocess
import sys

import pytest
import torch

from reactivate.activations import AdaptiveActivation
from reactivate.cli import main
from reactivate.models import KerasNet
from reactivate.training import load_model, save_model

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DATA = ["--dataset", "digits", "--test-subset", "30"]


def _run(argv):
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main([str(arg) for arg in argv])
    return code, stdout.getvalue(), stderr.getvalue()


def _assert_one_line_error(code, stderr, expected_code=1):
    assert code == expected_code
    assert stderr.startswith("reactivate: error: ")
    assert len(stderr.strip().splitlines()) == 1
    assert "Traceback" not in stderr


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A SiLU KerasNet trained for one epoch on 64 digits."""
    run = tmp_path_factory.mktemp("train") / "silu"
    code, stdout, stderr = _run(
        ["train", "--activation", "silu", "--epochs", 1, "--train-subset", 64, "--quiet", "--out", run, *DATA]
    )
    assert code == 0, stderr
    return run


def test_train_writes_run_folder(trained):
    for name in ("final.pt", "best.pt", "checkpoint.pt", "history.csv"):
        assert (trained / name).is_file(), name
    model, meta = load_model(trained / "final.pt")
    assert model.model_config["cnn_activation"] == "silu"
    assert meta["extra"]["epoch"] == 1


def test_replace_prints_report_and_accuracy(trained, tmp_path):
    adapted = tmp_path / "adapted.pt"
    code, stdout, stderr = _run(["replace", trained / "final.pt", "--out", adapted, *DATA])
    assert code == 0, stderr
    assert "test accuracy before:" in stdout
    assert "test accuracy after:" in stdout
    assert "predictions unchanged on 100.00% of 30 test images" in stdout
    model, _ = load_model(adapted)
    families = {module.family for module in model.modules() if isinstance(module, AdaptiveActivation)}
    assert families == {"ahaf"}


def test_replace_state_dict_file(trained, tmp_path):
    model, _ = load_model(trained / "final.pt")
    state_file = tmp_path / "weights.pt"
    torch.save(model.state_dict(), state_file)
    adapted = tmp_path / "adapted.pt"
    code, stdout, stderr = _run(
        ["replace", state_file, "--activation", "silu", "--include", "ffn_act", "--out", adapted, *DATA]
    )
    assert code == 0, stderr
    rebuilt, _ = load_model(adapted)
    adaptive = [name for name, module in rebuilt.named_modules() if isinstance(module, AdaptiveActivation)]
    assert adaptive == ["ffn_act"]


def test_finetune_continues_epoch_numbers(trained, tmp_path):
    adapted = tmp_path / "adapted.pt"
    assert _run(["replace", trained / "final.pt", "--out", adapted, "--no-eval"])[0] == 0
    tuned = tmp_path / "tuned"
    code, stdout, stderr = _run(
        ["finetune", adapted, "--epochs", 1, "--train-subset", 64, "--quiet", "--out", tuned, *DATA]
    )
    assert code == 0, stderr
    with open(tuned / "history.csv", newline="") as stream:
        epochs = [int(row["epoch"]) for row in csv.DictReader(stream)]
    assert epochs == [2]
    before, _ = load_model(adapted)
    after, _ = load_model(tuned / "final.pt")
    assert torch.equal(before.fc1.weight, after.fc1.weight)
    assert not torch.equal(before.cnn_act1.beta, after.cnn_act1.beta)


def test_evaluate_json(trained):
    code, stdout, stderr = _run(["evaluate", trained / "final.pt", "--json", *DATA])
    assert code == 0, stderr
    result = json.loads(stdout)
    assert result["images"] == 30
    assert 0.0 <= result["accuracy_percent"] <= 100.0
    assert result["correct"] == round(result["accuracy_percent"] * 30 / 100)


def test_plot_forms_and_curves(trained, tmp_path):
    adapted = tmp_path / "adapted.pt"
    assert _run(["replace", trained / "final.pt", "--out", adapted, "--no-eval"])[0] == 0
    figures = tmp_path / "figures"
    code, stdout, stderr = _run(["plot", "--checkpoint", adapted, "--runs", trained, "--out", figures])
    assert code == 0, stderr
    for name in ("activations.png", "training_curves.png"):
        assert (figures / name).read_bytes()[:8] == PNG_SIGNATURE


def test_module_entry_point_help():
    completed = subprocess.run(
        [sys.executable, "-m", "reactivate", "reproduce", "--help"], capture_output=True, text=True, timeout=120
    )
    assert completed.returncode == 0
    assert "--tune-epochs" in completed.stdout


# -- errors: one line on stderr, non-zero exit, no partial results ------------------------


def test_error_negative_epochs(tmp_path):
    code, _, stderr = _run(["reproduce", "--epochs", "-1", "--out", tmp_path])
    _assert_one_line_error(code, stderr, expected_code=2)
    assert "--epochs" in stderr
    assert not (tmp_path / "tables.md").exists()


def test_error_unknown_base(tmp_path):
    code, _, stderr = _run(["reproduce", "--bases", "relu,gelu", "--out", tmp_path])
    _assert_one_line_error(code, stderr, expected_code=2)
    assert "unknown base 'gelu'" in stderr
    assert not (tmp_path / "tables.md").exists()


def test_error_unknown_preset(trained, tmp_path):
    out = tmp_path / "adapted.pt"
    code, _, stderr = _run(["replace", trained / "final.pt", "--preset", "nonsense", "--out", out, "--no-eval"])
    _assert_one_line_error(code, stderr)
    assert "nonsense" in stderr
    assert not out.exists()


def test_error_cifar10_missing_offline(tmp_path):
    out = tmp_path / "results"
    code, _, stderr = _run(["reproduce", "--dataset", "cifar10", "--data-dir", tmp_path / "empty", "--out", out])
    _assert_one_line_error(code, stderr)
    assert "cifar" in stderr.lower()
    assert not (out / "tables.md").exists()


def test_error_unknown_dataset(tmp_path):
    code, _, stderr = _run(["reproduce", "--dataset", "imagenet", "--out", tmp_path])
    _assert_one_line_error(code, stderr)
    assert "imagenet" in stderr


def test_error_checkpoint_for_other_input_shape(tmp_path):
    path = tmp_path / "rgb.pt"
    save_model(path, KerasNet(in_channels=3))
    code, _, stderr = _run(["evaluate", path, *DATA])
    _assert_one_line_error(code, stderr)
    assert "3x32x32" in stderr
    assert "1x32x32" in stderr


def test_error_state_dict_of_other_architecture(tmp_path):
    path = tmp_path / "linear.pt"
    torch.save(torch.nn.Linear(4, 2).state_dict(), path)
    code, _, stderr = _run(["replace", path, "--out", tmp_path / "adapted.pt", "--no-eval"])
    _assert_one_line_error(code, stderr)
    assert "KerasNet state dict" in stderr


def test_error_state_dict_extra_key(trained, tmp_path):
    model, _ = load_model(trained / "final.pt")
    path = tmp_path / "weights.pt"
    state = model.state_dict()
    state["fc1.extra"] = torch.zeros(1)
    torch.save(state, path)
    code, _, stderr = _run(["evaluate", path, *DATA])
    _assert_one_line_error(code, stderr)
    assert "does not fit KerasNet" in stderr


def test_error_missing_checkpoint(tmp_path):
    code, _, stderr = _run(["evaluate", tmp_path / "absent.pt", *DATA])
    _assert_one_line_error(code, stderr)
    assert "not found" in stderr


def test_error_finetune_without_adaptive(trained, tmp_path):
    code, _, stderr = _run(["finetune", trained / "final.pt", "--out", tmp_path / "tuned", *DATA])
    _assert_one_line_error(code, stderr)
    assert "reactivate replace" in stderr
    assert not (tmp_path / "tuned").exists()


def test_error_train_out_is_file(tmp_path):
    existing = tmp_path / "notes.txt"
    existing.write_text("keep me\n")
    code, _, stderr = _run(["train", "--epochs", 1, "--out", existing, *DATA])
    _assert_one_line_error(code, stderr)
    assert "is a file" in stderr
    assert existing.read_text() == "keep me\n"


def test_error_replace_out_is_folder(trained, tmp_path):
    code, _, stderr = _run(["replace", trained / "final.pt", "--out", tmp_path, "--no-eval", *DATA])
    _assert_one_line_error(code, stderr)
    assert "is a folder" in stderr
    assert list(tmp_path.iterdir()) == []


def test_error_checkpoint_is_folder(tmp_path):
    code, _, stderr = _run(["evaluate", tmp_path, *DATA])
    _assert_one_line_error(code, stderr)
    assert "is a folder" in stderr


def test_error_checkpoint_not_torch_file(tmp_path):
    text_file = tmp_path / "model.pt"
    text_file.write_text("not a checkpoint\n")
    code, _, stderr = _run(["evaluate", text_file, *DATA])
    _assert_one_line_error(code, stderr)
    assert "not a PyTorch checkpoint" in stderr


def test_error_replace_matches_nothing(trained, tmp_path):
    adapted = tmp_path / "adapted.pt"
    code, _, stderr = _run(
        ["replace", trained / "final.pt", "--include", "no_such_site", "--out", adapted, "--no-eval", *DATA]
    )
    assert code == 1
    assert "reactivate: warning: include pattern 'no_such_site' matched no activation site" in stderr
    assert "reactivate: error: no activation was replaced" in stderr
    assert "Traceback" not in stderr
    assert not adapted.exists()
