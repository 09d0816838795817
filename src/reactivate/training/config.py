"""Hyper-parameters of one training run, validated, with a JSON round trip."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, fields
from typing import Any

import torch

from ..errors import ReactivateError

__all__ = ["TrainConfig", "TRAINABLE_CHOICES", "RESUME_FREE_FIELDS"]

TRAINABLE_CHOICES = ("all", "activations")

# Fields that may change between an interrupted run and its resumption, because
# they do not change the sequence of weight updates. They are the number of
# epochs (raise it to extend a finished run), the progress bar, the device and
# the evaluation batch size.
RESUME_FREE_FIELDS = frozenset({"epochs", "progress", "device", "test_batch_size"})


@dataclass
class TrainConfig:
    """Hyper-parameters of one call of :func:`~reactivate.training.fit`.

    The defaults are the training setup of Bodyanskiy & Kostiuk, "Using Adaptive
    Activation Functions in Pre-Trained Artificial Neural Network Models"
    (ICST 2023). That is RMSprop with lr 1e-4, alpha 0.9, eps 1e-7, no
    momentum and not centred, batch 64, test batch 1000, cross-entropy loss,
    seed 42, deterministic algorithms, 100 epochs, and flip and translation
    augmentation.

    Args:
        epochs (int): epochs to train in this stage, counted from
            ``epoch_offset``. Default: 100.
        batch_size (int): training batch size of each process. Under
            ``torchrun`` with ``W`` processes the global batch, over which the
            loss is averaged for one optimizer step, is ``batch_size * W``.
            Default: 64.
        test_batch_size (int): batch size of evaluation, per process.
            Default: 1000.
        lr (float): RMSprop learning rate. Default: 1e-4.
        rmsprop_alpha (float): RMSprop smoothing constant (``rho`` in Keras),
            in [0, 1). Default: 0.9.
        eps (float): RMSprop term added to the denominator. Default: 1e-7.
        momentum (float): RMSprop momentum, >= 0. Default: 0.0.
        weight_decay (float): L2 penalty on the weights. Adaptive activation
            parameters never get weight decay. Default: 0.0.
        seed (int): seed of the shuffling and augmentation generators and of
            the global random generators (``torch``, ``random``, ``numpy``);
            process ``r`` of a distributed run seeds its global generators
            with ``seed + r`` so dropout masks differ between processes.
            Default: 42.
        augment (bool): apply a random horizontal flip and integer translation
            to each training batch. Default: True.
        flip_p (float): probability of the horizontal flip. Default: 0.5.
        max_shift (float): largest translation as a fraction of the image
            width and height, with zero fill. Default: 0.1.
        trainable (str): ``"all"`` trains every parameter and sets
            ``requires_grad`` on all of them. ``"activations"`` freezes every
            parameter except those of :class:`~reactivate.AdaptiveActivation`
            modules and optimizes only those. Default: ``"all"``.
        deterministic (bool): call ``torch.use_deterministic_algorithms(True)``
            for the duration of the run and disable cuDNN benchmarking.
            Default: True.
        device (str): ``"auto"`` (the process's CUDA device under
            ``torchrun``, else ``cuda`` when available, else ``cpu``) or a
            torch device string. Default: ``"auto"``.
        progress (bool): show a progress bar; it is also hidden when standard
            error is not a terminal and on every process but rank 0.
            Default: True.
        epoch_offset (int): number of epochs the model was already trained in
            an earlier stage; this stage's epochs are numbered from
            ``epoch_offset + 1``. Default: 0.
        sync_batchnorm (bool): under ``torchrun``, convert BatchNorm layers to
            :class:`torch.nn.SyncBatchNorm` so batch statistics cover the
            global batch (CUDA only). Without it each process normalizes with
            its own batch statistics and the running statistics of rank 0 are
            broadcast before each forward pass. Default: False.

    Example::

        >>> config = TrainConfig(epochs=50, trainable="activations", epoch_offset=100)
        >>> TrainConfig.from_dict(config.to_dict()) == config
        True
    """

    epochs: int = 100
    batch_size: int = 64
    test_batch_size: int = 1000
    lr: float = 1e-4
    rmsprop_alpha: float = 0.9
    eps: float = 1e-7
    momentum: float = 0.0
    weight_decay: float = 0.0
    seed: int = 42
    augment: bool = True
    flip_p: float = 0.5
    max_shift: float = 0.1
    trainable: str = "all"
    deterministic: bool = True
    device: str = "auto"
    progress: bool = True
    epoch_offset: int = 0
    sync_batchnorm: bool = False

    def __post_init__(self) -> None:
        self._check_int("epochs", minimum=0)
        self._check_int("batch_size", minimum=1)
        self._check_int("test_batch_size", minimum=1)
        self._check_int("seed", minimum=0)
        self._check_int("epoch_offset", minimum=0)

        self._check_float("lr", low=0.0, low_open=True)
        self._check_float("rmsprop_alpha", low=0.0, high=1.0, high_open=True)
        self._check_float("eps", low=0.0, low_open=True)
        self._check_float("momentum", low=0.0)
        self._check_float("weight_decay", low=0.0)
        self._check_float("flip_p", low=0.0, high=1.0)
        self._check_float("max_shift", low=0.0, high=1.0, high_open=True)

        for name in ("augment", "deterministic", "progress", "sync_batchnorm"):
            value = getattr(self, name)
            if not isinstance(value, bool):
                raise ReactivateError(f"TrainConfig.{name} must be True or False, got {value!r}")

        if self.trainable not in TRAINABLE_CHOICES:
            raise ReactivateError(
                f"TrainConfig.trainable must be one of {', '.join(map(repr, TRAINABLE_CHOICES))}, "
                f"got {self.trainable!r}"
            )
        if not isinstance(self.device, str):
            raise ReactivateError(f"TrainConfig.device must be a string such as 'auto', 'cpu' or 'cuda:0', got {self.device!r}")
        if self.device != "auto":
            try:
                torch.device(self.device)
            except (RuntimeError, ValueError):
                raise ReactivateError(
                    f"TrainConfig.device must be 'auto' or a torch device string such as 'cpu' or 'cuda:0', "
                    f"got {self.device!r}"
                ) from None

    def _check_int(self, name: str, *, minimum: int) -> None:
        value = getattr(self, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ReactivateError(f"TrainConfig.{name} must be an integer >= {minimum}, got {value!r}")

    def _check_float(
        self,
        name: str,
        *,
        low: float,
        high: float = math.inf,
        low_open: bool = False,
        high_open: bool = False,
    ) -> None:
        value = getattr(self, name)
        left = "(" if low_open else "["
        right = ")" if high_open or math.isinf(high) else "]"
        expected = f"a number in {left}{low:g}, {high:g}{right}"
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ReactivateError(f"TrainConfig.{name} must be {expected}, got {value!r}")
        value = float(value)
        above_low = value > low if low_open else value >= low
        below_high = value < high if high_open else value <= high
        if not (math.isfinite(value) and above_low and below_high):
            raise ReactivateError(f"TrainConfig.{name} must be {expected}, got {value!r}")
        setattr(self, name, value)

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as a JSON-serializable dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        """Build a config from a dict such as :meth:`to_dict` returns.

        Missing fields take their defaults; unknown fields raise ``ReactivateError`` (a ``ValueError``).
        """
        if not isinstance(data, dict):
            raise ReactivateError(f"TrainConfig.from_dict expects a dict, got {type(data).__name__}")
        known = {field.name for field in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ReactivateError(
                f"unknown TrainConfig field(s) {', '.join(unknown)}; valid fields: {', '.join(sorted(known))}"
            )
        return cls(**data)

    def differences(self, other: "TrainConfig", *, ignore: frozenset[str] = frozenset()) -> dict[str, tuple[Any, Any]]:
        """Return ``{field: (self value, other value)}`` for the fields that differ."""
        mine, theirs = self.to_dict(), other.to_dict()
        return {name: (mine[name], theirs[name]) for name in mine if name not in ignore and mine[name] != theirs[name]}
