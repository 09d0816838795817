"""Training, evaluation, checkpoints and resumption, in one process or under torchrun."""

from .checkpoint import load_checkpoint, save_checkpoint
from .config import RESUME_FREE_FIELDS, TrainConfig
from .distributed import DistInfo, cleanup_distributed, setup_distributed
from .errors import CheckpointError, ResumeMismatchError, TrainingDivergedError
from .evaluate import EvalResult, evaluate
from .loop import fit
from .memory import keep_freed_memory
from .model_file import load_model, load_model_weights, save_model
from .results import EpochRecord, TrainResult

__all__ = [
    "TrainConfig",
    "RESUME_FREE_FIELDS",
    "fit",
    "evaluate",
    "EvalResult",
    "EpochRecord",
    "TrainResult",
    "save_model",
    "load_model",
    "load_model_weights",
    "save_checkpoint",
    "load_checkpoint",
    "DistInfo",
    "setup_distributed",
    "cleanup_distributed",
    "CheckpointError",
    "ResumeMismatchError",
    "TrainingDivergedError",
    "keep_freed_memory",
]
