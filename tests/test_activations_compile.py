"""torch.compile over the adaptive activations.

The first test compiles a small model (tens of seconds); the second, opt-in
test compiles the kernels of the ``"compiled"`` backend.
"""

from __future__ import annotations

import os
import warnings

import pytest
import torch

from reactivate import AHAF, LEAF, FNeuronActivation
from reactivate.activations import kernels


def run_step(model, x):
    y = model(x)
    y.square().mean().backward()
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    return y.detach(), grads


def test_torch_compile_matches_eager():
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(16, 32),
        AHAF("relu", gamma=1e4),
        torch.nn.Linear(32, 32),
        LEAF("tanh"),
        torch.nn.Linear(32, 32),
        FNeuronActivation("tanh"),
    )
    x = torch.randn(64, 16) * 3
    expected_y, expected_grads = run_step(model, x)
    compiled = torch.compile(model)
    y, grads = run_step(compiled, x)
    torch.testing.assert_close(y, expected_y, rtol=1e-5, atol=1e-6)
    for grad, expected in zip(grads, expected_grads):
        torch.testing.assert_close(grad, expected, rtol=1e-4, atol=1e-6)


@pytest.mark.skipif(
    os.environ.get("REACTIVATE_TEST_COMPILED_KERNELS") != "1",
    reason="compiles six kernels (about a minute); set REACTIVATE_TEST_COMPILED_KERNELS=1 to run",
)
def test_compiled_kernels_match_eager():
    # A compile failure would fall back to eager with a RuntimeWarning, which
    # this test turns into an error.
    x = (torch.randn(4, 8, 5) * 3).requires_grad_()
    for family in (AHAF, LEAF, FNeuronActivation):
        module = family(granularity="channel", shape=(8,))
        with torch.no_grad():
            for p in module.parameters():
                p.add_(0.1 * torch.randn_like(p))
        params = list(module.parameters())
        y_eager = module(x)
        expected = torch.autograd.grad(y_eager.sum(), [x, *params])
        kernels.set_backend("compiled")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", RuntimeWarning)
                y = module(x)
                grads = torch.autograd.grad(y.sum(), [x, *params])
        finally:
            kernels.set_backend("eager")
        torch.testing.assert_close(y, y_eager, rtol=1e-5, atol=1e-6)
        for grad, reference in zip(grads, expected):
            torch.testing.assert_close(grad, reference, rtol=1e-5, atol=1e-5)
