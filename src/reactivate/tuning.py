"""Fine-tuning helpers: activation parameters, freezing, optimizer groups.

Adaptive parameters are found by module type (every
:class:`~reactivate.AdaptiveActivation` in the tree), never by parameter name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

from .activations import AdaptiveActivation
from .errors import ReactivateError

__all__ = [
    "activation_parameters",
    "named_activation_parameters",
    "freeze_except_activations",
    "unfreeze_all",
    "parameter_summary",
    "ParameterSummary",
    "optimizer_param_groups",
]

_FREEZE_HANDLES = "_reactivate_norm_handles"


def named_activation_parameters(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """Return ``(qualified name, parameter)`` for every adaptive activation parameter.

    Args:
        model: any module.

    Returns:
        List of pairs, each parameter once even when a module is registered
        under several names.

    Example:
        >>> from reactivate import AHAF
        >>> [n for n, _ in named_activation_parameters(nn.Sequential(nn.Linear(2, 2), AHAF()))]
        ['1.beta', '1.gamma']
    """
    result = []
    seen: set[int] = set()
    for prefix, module in model.named_modules():
        if not isinstance(module, AdaptiveActivation):
            continue
        for name, parameter in module.named_parameters():
            if id(parameter) not in seen:
                seen.add(id(parameter))
                result.append((f"{prefix}.{name}" if prefix else name, parameter))
    return result


def activation_parameters(model: nn.Module) -> list[nn.Parameter]:
    """Return the parameters of every adaptive activation in ``model``.

    Args:
        model: any module.

    Returns:
        The parameters, each once.

    Example:
        >>> from reactivate import AHAF
        >>> len(activation_parameters(nn.Sequential(nn.Linear(2, 2), AHAF())))
        2
    """
    return [p for _, p in named_activation_parameters(model)]


def _freeze_norm_hook(module: nn.Module, args: tuple) -> None:
    module.training = False


def freeze_except_activations(model: nn.Module, *, freeze_norm_statistics: bool = True) -> "ParameterSummary":
    """Make only the adaptive activation parameters trainable.

    Every other parameter gets ``requires_grad=False``. With
    ``freeze_norm_statistics`` (the default), every batch-norm style module
    (``nn.BatchNorm*``, ``nn.InstanceNorm*``, ``nn.SyncBatchNorm``) runs in
    eval mode from now on, even after ``model.train()``, so its running
    statistics stay bit-identical too. Dropout keeps following
    ``model.train()``/``model.eval()``; it changes no stored tensor.

    Args:
        model: a model with adaptive activations.
        freeze_norm_statistics: keep normalisation statistics fixed. Default: True.

    Returns:
        The :class:`ParameterSummary` after freezing.

    Raises:
        ReactivateError: when the model has no adaptive activation.

    Example:
        >>> from reactivate import AHAF
        >>> model = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4), AHAF())
        >>> print(freeze_except_activations(model))  # doctest: +ELLIPSIS
        trainable 2 of 30 parameters (6.67%)...

    .. note::
        :func:`unfreeze_all` undoes both parts.
    """
    active = {id(p) for p in activation_parameters(model)}
    if not active:
        raise ReactivateError(
            "the model has no adaptive activation parameters to train; call replace_activations first")
    for parameter in model.parameters():
        parameter.requires_grad_(id(parameter) in active)
    if freeze_norm_statistics and _FREEZE_HANDLES not in model.__dict__:
        handles = []
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._NormBase):
                module.training = False
                handles.append(module.register_forward_pre_hook(_freeze_norm_hook))
        model.__dict__[_FREEZE_HANDLES] = handles
    return parameter_summary(model)


def unfreeze_all(model: nn.Module) -> "ParameterSummary":
    """Make every parameter trainable and let normalisation statistics follow ``model.train()`` again.

    Args:
        model: a model passed to :func:`freeze_except_activations`.

    Returns:
        The :class:`ParameterSummary` afterwards.

    Example:
        >>> unfreeze_all(model).trainable == unfreeze_all(model).total  # doctest: +SKIP
        True
    """
    for parameter in model.parameters():
        parameter.requires_grad_(True)
    for handle in model.__dict__.pop(_FREEZE_HANDLES, []):
        handle.remove()
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._NormBase):
            module.training = model.training
    return parameter_summary(model)


@dataclass(frozen=True)
class ParameterSummary:
    """Counts of parameter elements in a model.

    Attributes:
        total: all parameter elements.
        trainable: elements with ``requires_grad=True``.
        activation: elements of adaptive activation parameters.
        activation_trainable: trainable ones among those.
        activation_modules: number of adaptive activation modules.
    """

    total: int
    trainable: int
    activation: int
    activation_trainable: int
    activation_modules: int

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def __str__(self) -> str:
        share = 100.0 * self.trainable / self.total if self.total else 0.0
        return (f"trainable {self.trainable:,} of {self.total:,} parameters ({share:.2f}%); "
                f"{self.activation_modules} adaptive activations with {self.activation:,} parameters, "
                f"{self.activation_trainable:,} trainable")


def parameter_summary(model: nn.Module) -> ParameterSummary:
    """Count trainable, total and adaptive activation parameters.

    Args:
        model: any module.

    Returns:
        A :class:`ParameterSummary`; ``str()`` gives one readable line.

    Example:
        >>> print(parameter_summary(nn.Linear(3, 2)))
        trainable 8 of 8 parameters (100.00%); 0 adaptive activations with 0 parameters, 0 trainable
    """
    parameters = list({id(p): p for p in model.parameters()}.values())
    activation = activation_parameters(model)
    modules = {id(m) for m in model.modules() if isinstance(m, AdaptiveActivation)}
    return ParameterSummary(
        total=sum(p.numel() for p in parameters),
        trainable=sum(p.numel() for p in parameters if p.requires_grad),
        activation=sum(p.numel() for p in activation),
        activation_trainable=sum(p.numel() for p in activation if p.requires_grad),
        activation_modules=len(modules),
    )


def optimizer_param_groups(
    model: nn.Module,
    weight_decay: float = 0.0,
    *,
    activation_lr: float | None = None,
    activation_weight_decay: float = 0.0,
) -> list[dict[str, Any]]:
    """Build optimizer parameter groups that keep weight decay off activation parameters.

    Weight decay would pull AHAF's ``beta`` and the F-neuron's weights
    towards zero, away from the function they started as, so activation
    parameters get ``activation_weight_decay`` (0 by default). Only
    parameters with ``requires_grad=True`` are included; empty groups are
    left out.

    Args:
        model: any module.
        weight_decay: weight decay of the other parameters. Default: 0.0.
        activation_lr: learning rate of the activation group; None uses
            the optimizer's. Default: None.
        activation_weight_decay: weight decay of the activation group.
            Default: 0.0.

    Returns:
        A list of dicts for ``torch.optim`` optimizers.

    Example:
        >>> groups = optimizer_param_groups(model, weight_decay=5e-4)  # doctest: +SKIP
        >>> optimizer = torch.optim.AdamW(groups, lr=1e-3)  # doctest: +SKIP
    """
    active = {id(p) for p in activation_parameters(model)}
    seen: set[int] = set()
    other, adaptive = [], []
    for parameter in model.parameters():
        if id(parameter) in seen or not parameter.requires_grad:
            continue
        seen.add(id(parameter))
        (adaptive if id(parameter) in active else other).append(parameter)
    groups = []
    if other:
        groups.append({"params": other, "weight_decay": weight_decay})
    if adaptive:
        group: dict[str, Any] = {"params": adaptive, "weight_decay": activation_weight_decay}
        if activation_lr is not None:
            group["lr"] = activation_lr
        groups.append(group)
    return groups

