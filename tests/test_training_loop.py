"""fit and evaluate in one process: run files, exact resumption, divergence, activation-only training."""

import csv
import json
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from reactivate import AdaptiveActivation
from reactivate.training import (
    CheckpointError,
    ResumeMismatchError,
    TrainConfig,
    TrainingDivergedError,
    evaluate,
    fit,
    load_checkpoint,
    load_model_weights,
)
from training_helpers import differing_tensors, digits_subset, make_tiny, tiny_splits


def quick_config(**overrides) -> TrainConfig:
    settings = dict(epochs=2, batch_size=16, test_batch_size=50, lr=3e-3, augment=False, progress=False, device="cpu")
    settings.update(overrides)
    return TrainConfig(**settings)


def test_fit_writes_run_files(tmp_path):
    model = make_tiny()
    result = fit(model, digits_subset(), quick_config(epochs=3), tmp_path)

    for name in ("checkpoint.pt", "best.pt", "final.pt", "history.csv", "config.json", "result.json", "train.log"):
        assert (tmp_path / name).is_file(), name
    assert not [path.name for path in tmp_path.iterdir() if path.name.endswith(".tmp")]

    with open(tmp_path / "history.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(row["epoch"]) for row in rows] == [1, 2, 3]
    assert set(rows[0]) == {"epoch", "train_loss_mean", "train_loss_var", "test_accuracy", "test_loss", "lr", "seconds"}
    assert float(rows[1]["test_accuracy"]) == pytest.approx(result.history[1].test_accuracy)

    written = json.loads((tmp_path / "config.json").read_text())
    assert written["config"] == quick_config(epochs=3).to_dict()
    assert written["global_batch_size"] == 16
    assert json.loads((tmp_path / "result.json").read_text())["best_epoch"] == result.best_epoch

    assert len(result.history) == 3
    assert result.final_accuracy == result.history[-1].test_accuracy
    assert result.final_accuracy > result.initial_accuracy
    assert result.best_accuracy == max(record.test_accuracy for record in result.history)
    assert all(record.train_loss_var >= 0 for record in result.history)
    assert result.history[1].train_loss_mean < result.history[0].train_loss_mean
    log = (tmp_path / "train.log").read_text()
    assert "epoch 3/3" in log


def test_best_file_holds_best_weights(tmp_path):
    data = tiny_splits()
    result = fit(make_tiny(), data, quick_config(epochs=3, lr=0.05), tmp_path)
    best = make_tiny(seed=5)
    meta = load_model_weights(tmp_path / "best.pt", best)
    assert meta["extra"]["epoch"] == result.best_epoch
    assert evaluate(best, data.test).accuracy == pytest.approx(result.best_accuracy)


def test_resume_is_bit_identical(tmp_path):
    data = digits_subset()
    config = quick_config(epochs=3, augment=True)
    full_model = make_tiny(adaptive=True, dropout=0.3)
    full = fit(full_model, data, config, tmp_path / "full")

    fit(make_tiny(adaptive=True, dropout=0.3), data, quick_config(epochs=1, augment=True), tmp_path / "cut")
    # A fresh process would start from other weights and another global RNG state.
    torch.manual_seed(12345)
    resumed_model = make_tiny(seed=7, adaptive=True, dropout=0.3)
    resumed = fit(resumed_model, data, config, tmp_path / "cut")

    assert differing_tensors(full_model.state_dict(), resumed_model.state_dict()) == []
    full_optimizer = load_checkpoint(tmp_path / "full" / "checkpoint.pt")["optimizer"]["state"]
    resumed_optimizer = load_checkpoint(tmp_path / "cut" / "checkpoint.pt")["optimizer"]["state"]
    for key in full_optimizer:
        assert torch.equal(full_optimizer[key]["square_avg"], resumed_optimizer[key]["square_avg"])
    assert [r.epoch for r in resumed.history] == [1, 2, 3]
    for first, second in zip(full.history, resumed.history):
        assert first.train_loss_mean == second.train_loss_mean
        assert first.test_accuracy == second.test_accuracy
        assert first.test_loss == second.test_loss
    assert resumed.best_epoch == full.best_epoch
    assert resumed.initial_accuracy == full.initial_accuracy


def test_finished_run_trains_no_more(tmp_path):
    data = tiny_splits()
    first = fit(make_tiny(), data, quick_config(), tmp_path)
    again_model = make_tiny(seed=3)
    again = fit(again_model, data, quick_config(), tmp_path)
    assert [r.to_dict() for r in again.history] == [r.to_dict() for r in first.history]
    saved = load_checkpoint(tmp_path / "checkpoint.pt")["model"]
    assert differing_tensors(saved, again_model.state_dict()) == []


def test_resume_rejects_changed_config(tmp_path):
    data = tiny_splits()
    fit(make_tiny(), data, quick_config(epochs=1), tmp_path)
    with pytest.raises(ResumeMismatchError, match=r"lr \(checkpoint 0\.003, now 0\.01\)") as raised:
        fit(make_tiny(), data, quick_config(epochs=2, lr=0.01, seed=5), tmp_path)
    assert "seed (checkpoint 42, now 5)" in str(raised.value)
    assert "epochs" not in str(raised.value)


def test_resume_rejects_foreign_checkpoint(tmp_path):
    (tmp_path / "checkpoint.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable training checkpoint"):
        fit(make_tiny(), tiny_splits(), quick_config(), tmp_path)


class NaNAfter(nn.Module):
    """Identity that returns NaN from its ``limit``-th training forward pass on."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.calls += 1
            if self.calls >= self.limit:
                return x * float("nan")
        return x


def test_nan_loss_stops_run_and_keeps_checkpoint(tmp_path):
    model = nn.Sequential(make_tiny(), NaNAfter(limit=5))
    data = tiny_splits(train=40)  # 3 steps of batch 16 per epoch, so NaN starts in epoch 2
    with pytest.raises(TrainingDivergedError, match="diverged in epoch 2.*nan") as raised:
        fit(model, data, quick_config(epochs=4), tmp_path)
    assert raised.value.epoch == 2
    assert math.isnan(raised.value.loss)
    checkpoint = load_checkpoint(tmp_path / "checkpoint.pt")
    assert checkpoint["epoch"] == 1
    assert all(torch.isfinite(tensor).all() for tensor in checkpoint["model"].values())
    assert "diverged" in (tmp_path / "train.log").read_text()


def test_nan_in_first_epoch_says_no_checkpoint(tmp_path):
    model = nn.Sequential(make_tiny(), NaNAfter(limit=1))
    with pytest.raises(TrainingDivergedError, match="no checkpoint was written"):
        fit(model, tiny_splits(), quick_config(), tmp_path)
    assert not (tmp_path / "checkpoint.pt").exists()


def test_activation_only_training_freezes_rest(tmp_path):
    model = make_tiny(adaptive=True)
    before = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    fit(model, digits_subset(), quick_config(trainable="activations", lr=1e-2), tmp_path)

    adaptive_names = {
        f"{module_name}.{name}"
        for module_name, module in model.named_modules()
        if isinstance(module, AdaptiveActivation)
        for name, _ in module.named_parameters()
    }
    assert adaptive_names == {"act1.beta", "act1.gamma", "act2.beta", "act2.gamma"}
    for name, parameter in model.named_parameters():
        assert parameter.requires_grad == (name in adaptive_names), name
        if name in adaptive_names:
            continue
        assert torch.equal(parameter.detach(), before[name]), name
    assert any(not torch.equal(model.state_dict()[name], before[name]) for name in adaptive_names)

    groups = load_checkpoint(tmp_path / "checkpoint.pt")["optimizer"]["param_groups"]
    assert len(groups) == 1
    assert len(groups[0]["params"]) == len(adaptive_names)
    assert groups[0]["weight_decay"] == 0.0


def test_weight_decay_skips_activation_parameters(tmp_path):
    fit(make_tiny(adaptive=True), tiny_splits(), quick_config(epochs=1, weight_decay=1e-3), tmp_path)
    groups = load_checkpoint(tmp_path / "checkpoint.pt")["optimizer"]["param_groups"]
    assert [group["weight_decay"] for group in groups] == [1e-3, 0.0]
    assert [len(group["params"]) for group in groups] == [6, 4]


def test_activation_mode_without_adaptive_raises(tmp_path):
    with pytest.raises(ValueError, match="no adaptive activation parameters"):
        fit(make_tiny(), tiny_splits(), quick_config(trainable="activations"), tmp_path)


def test_epoch_offset_and_prior_best(tmp_path):
    data = tiny_splits()
    config = quick_config(epoch_offset=10)
    result = fit(make_tiny(), data, config, tmp_path / "a", prior_best=(1.0, 7))
    assert [record.epoch for record in result.history] == [11, 12]
    assert (result.best_accuracy, result.best_epoch) == (1.0, 7)

    result = fit(make_tiny(), data, config, tmp_path / "b", prior_best=(0.0, 7))
    assert result.best_epoch in (11, 12)
    assert result.best_accuracy == max(record.test_accuracy for record in result.history)


def test_fit_restores_deterministic_setting(tmp_path):
    before = torch.are_deterministic_algorithms_enabled()
    fit(make_tiny(), tiny_splits(), quick_config(epochs=1, deterministic=not before), tmp_path)
    assert torch.are_deterministic_algorithms_enabled() == before


def test_evaluate_matches_direct_computation():
    data = tiny_splits(train=10, test=37)
    model = make_tiny().train()
    result = evaluate(model, data.test, batch_size=8)
    with torch.no_grad():
        logits = model.eval()(data.test.images)
    model.train()
    assert result.predictions.tolist() == logits.argmax(1).tolist()
    assert result.accuracy == pytest.approx((logits.argmax(1) == data.test.labels).float().mean().item())
    assert result.loss == pytest.approx(F.cross_entropy(logits, data.test.labels).item(), rel=1e-6)
    assert model.training


def test_evaluate_rejects_bad_batch_size():
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 0"):
        evaluate(make_tiny(), tiny_splits().test, batch_size=0)
