"""Adaptive activation families: AHAF, LEAF and the fuzzy F-neuron.

Each family is an ``nn.Module`` that starts out reproducing a classic
activation (see each class's table) and runs through fused autograd kernels
(:mod:`reactivate.activations.kernels`). ``set_backend("compiled")`` runs
those kernels through ``torch.compile``.
"""

from __future__ import annotations

from typing import Any

from .ahaf import AHAF
from .base import GRANULARITIES, AdaptiveActivation, ErrorBound, classic_function
from .fneuron import FNeuronActivation, membership_functions
from .kernels import get_backend, set_backend
from .leaf import LEAF

__all__ = [
    "AHAF",
    "LEAF",
    "FNeuronActivation",
    "AdaptiveActivation",
    "ErrorBound",
    "GRANULARITIES",
    "FAMILIES",
    "activation_from_config",
    "classic_function",
    "membership_functions",
    "get_backend",
    "set_backend",
]

FAMILIES: dict[str, type[AdaptiveActivation]] = {
    "ahaf": AHAF,
    "leaf": LEAF,
    "fneuron": FNeuronActivation,
}


def activation_from_config(config: dict[str, Any]) -> AdaptiveActivation:
    """Build an adaptive activation from the dict that ``config()`` returns."""
    config = dict(config)
    family = config.pop("family", None)
    if family not in FAMILIES:
        raise ValueError(f"unknown activation family {family!r}; known families: {', '.join(FAMILIES)}")
    if "interval" in config:
        config["interval"] = tuple(config["interval"])
    return FAMILIES[family](**config)
