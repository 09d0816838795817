"""Tests of freezing and optimizer groups for activation-only fine-tuning."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from reactivate import (
    activation_parameters,
    freeze_except_activations,
    optimizer_param_groups,
    parameter_summary,
    replace_activations,
)
from reactivate.errors import ReactivateError
from reactivate.tuning import named_activation_parameters, unfreeze_all


def model_with_batchnorm():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Dropout(0.3),
        nn.Conv2d(8, 8, 3), nn.BatchNorm2d(8), nn.SiLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(8, 16), nn.BatchNorm1d(16), nn.Tanh(), nn.Linear(16, 4))
    replace_activations(model, "paper")
    return model


def snapshot(model):
    adaptive = {id(p) for p in activation_parameters(model)}
    state = {}
    for name, p in model.named_parameters():
        if id(p) not in adaptive:
            state[name] = p.detach().clone()
    for name, b in model.named_buffers():
        state[name] = b.clone()
    return state


@pytest.mark.parametrize("optimizer_name", ["rmsprop", "adamw"])
def test_activation_only_training_changes_nothing_else(optimizer_name):
    model = model_with_batchnorm()
    freeze_except_activations(model)
    before = snapshot(model)
    start = [p.detach().clone() for p in activation_parameters(model)]
    groups = optimizer_param_groups(model, weight_decay=0.1)
    if optimizer_name == "rmsprop":
        optimizer = torch.optim.RMSprop(groups, lr=1e-2, alpha=0.9, eps=1e-7)
    else:
        optimizer = torch.optim.AdamW(groups, lr=1e-2)
    generator = torch.Generator().manual_seed(0)
    for _ in range(3):
        model.train()  # a training loop calls this every epoch
        x = torch.randn(4, 3, 6, 6, generator=generator)
        loss = F.cross_entropy(model(x), torch.tensor([0, 1, 2, 3]))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after = snapshot(model)
    for key, value in before.items():
        assert torch.equal(after[key], value), key
    moved = [not torch.equal(a, p) for a, p in zip(start, activation_parameters(model))]
    assert any(moved)


def test_named_activation_parameters_by_type():
    model = model_with_batchnorm()
    names = [n for n, _ in named_activation_parameters(model)]
    assert names == ["2.beta", "2.gamma", "6.beta", "6.gamma", "11.weight"]


def test_summary_counts_and_str():
    model = model_with_batchnorm()
    summary = freeze_except_activations(model)
    assert summary.activation == 4 + 18
    assert summary.trainable == summary.activation_trainable == 22
    assert summary.total == sum(p.numel() for p in model.parameters())
    assert str(summary).startswith(f"trainable 22 of {summary.total:,} parameters")
    assert parameter_summary(model) == summary


def test_unfreeze_all_restores_training():
    model = model_with_batchnorm()
    freeze_except_activations(model)
    summary = unfreeze_all(model)
    assert summary.trainable == summary.total
    model.train()
    stats = model[1].running_mean.clone()
    model(torch.randn(2, 3, 6, 6))
    assert not torch.equal(model[1].running_mean, stats)


def test_freeze_without_adaptive_activations_is_error():
    with pytest.raises(ReactivateError, match="replace_activations"):
        freeze_except_activations(nn.Linear(2, 2))


def test_param_groups_weight_decay_and_lr():
    model = model_with_batchnorm()
    groups = optimizer_param_groups(model, weight_decay=0.01, activation_lr=1e-3)
    assert len(groups) == 2
    assert groups[0]["weight_decay"] == 0.01
    assert groups[1]["weight_decay"] == 0.0
    assert groups[1]["lr"] == 1e-3
    assert {id(p) for p in groups[1]["params"]} == {id(p) for p in activation_parameters(model)}
    freeze_except_activations(model)
    assert len(optimizer_param_groups(model, weight_decay=0.01)) == 1
