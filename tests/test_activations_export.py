"""Tracing and ONNX export of models that contain adaptive activations."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from reactivate import AHAF, LEAF, FNeuronActivation

onnxruntime = pytest.importorskip("onnxruntime")


def small_model() -> torch.nn.Module:
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3, padding=1),
        AHAF("relu", granularity="channel", shape=(4,)),
        LEAF("tanh", granularity="neuron", shape=(4, 6, 6)),
        FNeuronActivation("tanh", granularity="channel", shape=(4,)),
        torch.nn.Flatten(),
        torch.nn.Linear(144, 10),
        FNeuronActivation("sigmoid"),
        AHAF("silu"),
        LEAF("silu", granularity="neuron", shape=(10,)),
    )
    with torch.no_grad():
        for module in model:
            if isinstance(module, (AHAF, LEAF, FNeuronActivation)):
                for p in module.parameters():
                    p.add_(0.1 * torch.randn_like(p))
    return model.eval()


def example_input() -> torch.Tensor:
    # Scaled so that some values fall outside the F-neuron interval.
    return torch.randn(2, 3, 6, 6, generator=torch.Generator().manual_seed(1)) * 4


def test_jit_trace_matches_eager():
    model, x = small_model(), example_input()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        traced = torch.jit.trace(model, x)
    with torch.no_grad():
        torch.testing.assert_close(traced(x), model(x), rtol=0, atol=1e-6)
        other = example_input() * 0.5
        torch.testing.assert_close(traced(other), model(other), rtol=0, atol=1e-6)


@pytest.mark.parametrize("dynamo", [False, True], ids=["torchscript-exporter", "dynamo-exporter"])
def test_onnx_export_runs_in_onnxruntime(tmp_path, dynamo):
    pytest.importorskip("onnx")
    if dynamo:
        pytest.importorskip("onnxscript")
    model, x = small_model(), example_input()
    path = tmp_path / "model.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), str(path), dynamo=dynamo, external_data=False)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (output,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    with torch.no_grad():
        expected = model(x).numpy()
    np.testing.assert_allclose(output, expected, rtol=0, atol=1e-5)
