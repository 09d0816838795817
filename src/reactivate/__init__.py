"""reactivate: adaptive activation functions for pre-trained PyTorch models."""

from .activations import AHAF, LEAF, AdaptiveActivation, ErrorBound, FNeuronActivation
from .checkpoints import load_adapter, load_pretrained, save_adapter
from .errors import ReactivateError, ReactivateWarning
from .replace import (
    ReplacementReport,
    reapply_replacement,
    replace_activations,
    replacement_spec,
    restore_activations,
)
from .tuning import activation_parameters, freeze_except_activations, optimizer_param_groups, parameter_summary
from .verify import ComparisonResult, compare_models

__version__ = "0.1.0"

__all__ = [
    "AHAF",
    "LEAF",
    "FNeuronActivation",
    "AdaptiveActivation",
    "ErrorBound",
    "__version__",
    "replace_activations",
    "restore_activations",
    "replacement_spec",
    "reapply_replacement",
    "ReplacementReport",
    "load_pretrained",
    "save_adapter",
    "load_adapter",
    "activation_parameters",
    "freeze_except_activations",
    "parameter_summary",
    "optimizer_param_groups",
    "compare_models",
    "ComparisonResult",
    "ReactivateError",
    "ReactivateWarning",
]
