"""Plan and options of the experiment matrix (no training here)."""

from __future__ import annotations

import pytest

from reactivate.experiments import (
    DEFAULT_EPOCHS,
    DEFAULT_TUNE_EPOCHS,
    ExperimentError,
    MatrixOptions,
    adaptive_include,
    plan_matrix,
)


def test_plan_order_and_dependencies(tmp_path):
    steps = plan_matrix(MatrixOptions(bases=("silu", "tanh")), tmp_path)
    assert [step.name for step in steps] == [
        "silu/reference", "silu/scratch", "silu/replaced", "silu/finetuned",
        "tanh/reference", "tanh/scratch", "tanh/replaced", "tanh/finetuned",
    ]
    assert steps[2].needs == ("silu/reference",)
    assert steps[3].needs == ("silu/replaced",)
    assert steps[0].run_dir == tmp_path / "runs" / "silu" / "reference"


def test_include_pattern_per_base():
    assert adaptive_include("relu") is None
    assert adaptive_include("silu") is None
    assert adaptive_include("tanh") == "ffn_act"
    assert adaptive_include("sigmoid") == "ffn_act"


def test_default_epochs_per_dataset():
    digits = MatrixOptions(dataset="digits")
    cifar = MatrixOptions(dataset="cifar10")
    assert (digits.epochs, digits.tune_epochs) == (DEFAULT_EPOCHS["digits"], DEFAULT_TUNE_EPOCHS["digits"])
    assert (cifar.epochs, cifar.tune_epochs) == (100, 50)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"bases": ("relu", "elu")}, "unknown base 'elu'"),
        ({"bases": ()}, "bases is empty"),
        ({"bases": ("relu", "relu")}, "repeats a base"),
        ({"epochs": 0}, "epochs=0 is invalid"),
        ({"tune_epochs": -1}, "tune_epochs=-1 is invalid"),
        ({"batch_size": 0}, "batch_size=0 is invalid"),
        ({"train_subset": 0}, "train_subset=0 is invalid"),
        ({"lr": 0.0}, "lr=0.0 is invalid"),
    ],
)
def test_invalid_options_raise(options, message):
    with pytest.raises(ExperimentError, match=message):
        MatrixOptions(**options)
