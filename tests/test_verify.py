"""Tests of comparing an original model with a derived one."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from reactivate import compare_models, replace_activations
from reactivate.errors import ReactivateError


def classifier():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 4))


def test_identical_models_on_tensor():
    model = classifier()
    result = compare_models(model, copy.deepcopy(model), torch.randn(10, 5))
    assert result.max_abs_diff == 0.0
    assert result.class_agreement == 1.0
    assert result.num_samples == 10
    assert result.num_batches == 1


def test_paper_replacement_on_dataloader():
    model = classifier()
    derived = copy.deepcopy(model)
    replace_activations(derived, "paper")
    data = TensorDataset(torch.randn(40, 5), torch.zeros(40, dtype=torch.long))
    result = compare_models(model, derived, DataLoader(data, batch_size=16))
    assert 0 < result.max_abs_diff < 0.1
    with torch.no_grad():
        scale = float(model(data.tensors[0]).abs().max())
    assert result.max_rel_diff == pytest.approx(result.max_abs_diff / scale)
    assert result.num_samples == 40
    assert result.num_batches == 3
    assert 0.9 <= result.class_agreement <= 1.0


def test_disagreement_is_measured():
    model = classifier()
    other = copy.deepcopy(model)
    with torch.no_grad():
        other[2].weight.neg_()
        other[2].bias.neg_()
    result = compare_models(model, other, torch.randn(50, 5))
    assert result.class_agreement < 0.5
    assert "class agreement" in str(result)


def test_training_flags_restored():
    model = classifier().train()
    other = copy.deepcopy(model).train()
    compare_models(model, other, torch.randn(3, 5))
    assert model.training and other.training


def test_bad_inputs():
    model = classifier()
    with pytest.raises(ReactivateError, match="iterable of batches"):
        compare_models(model, model, 3)
    with pytest.raises(ReactivateError, match="no batch"):
        compare_models(model, model, [])
    with pytest.raises(ReactivateError, match="different shapes"):
        compare_models(model, nn.Linear(5, 2), torch.randn(2, 5))
