"""reactivate: adaptive activation functions for pre-trained PyTorch models."""

from .activations import AHAF, LEAF, AdaptiveActivation, ErrorBound, FNeuronActivation

__version__ = "0.1.0"

__all__ = [
    "AHAF",
    "LEAF",
    "FNeuronActivation",
    "AdaptiveActivation",
    "ErrorBound",
    "__version__",
]
