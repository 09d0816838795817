"""Figures: activation forms, training curves, squared error."""

from __future__ import annotations

import pytest
import torch

from reactivate import AHAF, FNeuronActivation
from reactivate.plots import (
    activation_curves,
    plot_activation_forms,
    plot_squared_error,
    plot_training_curves,
    read_history,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _is_png(path) -> bool:
    return path.read_bytes()[:8] == PNG_SIGNATURE


def test_activation_curves_per_granularity():
    z = torch.linspace(-3, 3, 7)
    assert activation_curves(AHAF("silu"), z).shape == (7, 1)
    assert activation_curves(AHAF("silu", granularity="channel", shape=(5, 4, 4)), z).shape == (7, 5)
    neuron = FNeuronActivation("tanh", granularity="neuron", shape=(2, 3))
    curves = activation_curves(neuron, z)
    assert curves.shape == (7, 6)
    torch.testing.assert_close(curves[:, 0], torch.tanh(z), atol=0.02, rtol=0)


def test_activation_forms_png(tmp_path):
    tuned = AHAF("relu")
    with torch.no_grad():
        tuned.beta.fill_(1.5)
    path = tmp_path / "forms.png"
    figure = plot_activation_forms(
        {"cnn_act1": AHAF("relu"), "ffn_act": FNeuronActivation("tanh")},
        {"cnn_act1": tuned},
        path=path,
    )
    assert _is_png(path)
    assert len(figure.axes) == 2
    labels = [line.get_label() for line in figure.axes[0].lines]
    assert labels == ["relu (original)", "replaced", "fine-tuned"]


def test_activation_forms_empty_raises():
    with pytest.raises(ValueError, match="replaced is empty"):
        plot_activation_forms({})


def test_squared_error_fuzzy_tanh(tmp_path):
    path = tmp_path / "error.png"
    figure = plot_squared_error(FNeuronActivation("tanh"), z_range=(-4, 4), path=path)
    assert _is_png(path)
    squared = figure.axes[0].lines[0].get_ydata()
    # 18 membership functions on [-4, 4] reproduce tanh with a maximum
    # squared error of 3.66e-4.
    assert squared.max() == pytest.approx(3.66e-4, rel=0.01)


def test_training_curves_from_history(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "history.csv").write_text("epoch,test_accuracy,test_loss\n1,0.5,1.0\n2,0.75,0.5\n")
    epochs, accuracy = read_history(run)
    assert epochs == [1, 2]
    assert accuracy == [0.5, 0.75]
    path = tmp_path / "curves.png"
    plot_training_curves({"ReLU": {"reference": (epochs, accuracy)}}, path=path)
    assert _is_png(path)


def test_read_history_wrong_file(tmp_path):
    bad = tmp_path / "history.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="test_accuracy"):
        read_history(bad)
