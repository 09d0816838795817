"""Per-epoch records, the result of a training run, and the history CSV."""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass, fields
from typing import Any

__all__ = ["EpochRecord", "TrainResult", "history_csv"]


@dataclass(frozen=True)
class EpochRecord:
    """Measurements of one training epoch.

    Args:
        epoch (int): epoch number, counted on from the epoch offset.
        train_loss_mean (float): mean of the per-batch training losses.
        train_loss_var (float): population variance of the per-batch training
            losses (each the mean cross-entropy of one global batch).
        test_accuracy (float): test accuracy after the epoch, in [0, 1].
        test_loss (float): mean test cross-entropy after the epoch.
        lr (float): learning rate during the epoch.
        seconds (float): wall-clock time of the epoch, training and test.
    """

    epoch: int
    train_loss_mean: float
    train_loss_var: float
    test_accuracy: float
    test_loss: float
    lr: float
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as a dict of plain numbers."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "EpochRecord":
        """Build a record from :meth:`to_dict` output."""
        return cls(**{item.name: data[item.name] for item in fields(cls)})


@dataclass
class TrainResult:
    """Outcome of :func:`~reactivate.training.fit`.

    Args:
        history (list[EpochRecord]): one record per epoch of this stage,
            including epochs finished before a resumption.
        best_accuracy (float): best test accuracy, over this stage and the
            ``prior_best`` passed to ``fit``.
        best_epoch (int): epoch of ``best_accuracy`` (the first one on ties).
        final_accuracy (float): test accuracy after the last epoch, or of the
            starting model when no epoch ran.
        train_seconds (float): sum of the epochs' wall-clock times.
        initial_accuracy (float): test accuracy of the model before the first
            epoch of this stage.
        initial_loss (float): test loss of the model before the first epoch.
        world_size (int): number of processes that trained.
    """

    history: list[EpochRecord]
    best_accuracy: float
    best_epoch: int
    final_accuracy: float
    train_seconds: float
    initial_accuracy: float = float("nan")
    initial_loss: float = float("nan")
    world_size: int = 1

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serializable dict."""
        data = asdict(self)
        data["history"] = [record.to_dict() for record in self.history]
        return data


def history_csv(history: list[EpochRecord]) -> str:
    """Format records as CSV text with a header row."""
    buffer = io.StringIO()
    names = [item.name for item in fields(EpochRecord)]
    writer = csv.DictWriter(buffer, fieldnames=names, lineterminator="\n")
    writer.writeheader()
    for record in history:
        writer.writerow(record.to_dict())
    return buffer.getvalue()
