"""Exceptions raised by training, checkpoints and model files."""

from __future__ import annotations

from ..errors import CheckpointError

__all__ = ["CheckpointError", "ResumeMismatchError", "TrainingDivergedError"]


class ResumeMismatchError(CheckpointError):
    """A run folder's checkpoint was written with settings that differ from the current ones."""


class TrainingDivergedError(RuntimeError):
    """The training loss became NaN or infinite.

    Args:
        epoch (int): epoch number, counted with the epoch offset, in which it happened.
        loss (float): the non-finite loss value.
        checkpoint (str | None): path of the last checkpoint of a finished
            epoch, or None when no epoch finished.
    """

    def __init__(self, message: str, *, epoch: int, loss: float, checkpoint: str | None) -> None:
        super().__init__(message)
        self.epoch = epoch
        self.loss = loss
        self.checkpoint = checkpoint
