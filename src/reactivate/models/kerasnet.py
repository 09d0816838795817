"""KerasNet: the small CIFAR-10 network of the adaptive-activation paper.

The network follows the ``cifar10_cnn.py`` example of Keras 1.2.2, which
Bodyanskiy and Kostiuk used as the base model in "Using Adaptive Activation
Functions in Pre-Trained Artificial Neural Network Models" (ICST 2023).
"""

from __future__ import annotations

import copy
from typing import Any, Sequence

import torch
from torch import nn

from .activation_spec import ActivationSpec, activation_factory, describe_activation

__all__ = ["KerasNet"]

_CNN_SITES = ("cnn_act1", "cnn_act2", "cnn_act3", "cnn_act4")


def _feature_size(size: int) -> int:
    """Side of the feature map after the two conv-conv-pool blocks."""
    # The first conv of each block keeps the size (padding 1), the second
    # shrinks it by 2 (no padding), and the 2x2 max-pool halves it (floor).
    size = (size - 2) // 2
    return (size - 2) // 2


def _check_image_size(image_size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(image_size, int) and not isinstance(image_size, bool):
        height = width = image_size
    elif (
        isinstance(image_size, Sequence)
        and len(image_size) == 2
        and all(isinstance(s, int) and not isinstance(s, bool) for s in image_size)
    ):
        height, width = image_size
    else:
        raise ValueError(f"image_size={image_size!r} is invalid; give an int such as 32 or a (height, width) pair")
    if min(height, width) < 10:
        raise ValueError(
            f"image_size={image_size!r} is too small; KerasNet needs at least 10 pixels per side "
            "so that a feature map remains after both pooling layers"
        )
    return height, width


def _check_count(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name}={value!r} is invalid; give an integer of at least {minimum}")
    return value


def _check_probability(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ValueError(f"{name}={value!r} is invalid; give a dropout probability in [0, 1)")
    return float(value)


class KerasNet(nn.Module):
    r"""Four-convolution CIFAR-10 classifier from the Keras 1.2.2 examples.

    Layers, in order, for ``C`` input channels, ``K`` classes and images of
    ``H x W`` pixels (the sizes in brackets are for 3x32x32 CIFAR-10):

    ========  ==========================================================
    conv1     ``Conv2d(C, 32, 3, padding=1)``  [32x32x32]
    cnn_act1  CNN activation
    conv2     ``Conv2d(32, 32, 3)``, no padding  [32x30x30]
    cnn_act2  CNN activation
    pool1     ``MaxPool2d(2)``  [32x15x15]
    drop1     ``Dropout2d(conv_dropout)``
    conv3     ``Conv2d(32, 64, 3, padding=1)``  [64x15x15]
    cnn_act3  CNN activation
    conv4     ``Conv2d(64, 64, 3)``, no padding  [64x13x13]
    cnn_act4  CNN activation
    pool2     ``MaxPool2d(2)``  [64x6x6]
    drop2     ``Dropout2d(conv_dropout)``
    flatten   ``Flatten()``  [2304]
    fc1       ``Linear(64 * h * w, 512)`` with ``h = ((H - 2) // 2 - 2) // 2``
              and ``w`` likewise
    ffn_act   FFN activation
    drop3     ``Dropout(dropout)``
    fc2       ``Linear(512, K)``, logits (the softmax belongs to the loss)
    ========  ==========================================================

    "CNN AF" in the paper's tables names the four ``cnn_act*`` sites and
    "FFN AF" the ``ffn_act`` site. Each site has its own module instance,
    so replacing or training one never touches another.

    Args:
        in_channels: image channels. Default: 3.
        num_classes: number of classes. Default: 10.
        image_size: side of square images, or a ``(height, width)`` pair; at
            least 10. Default: 32.
        cnn_activation: activation of the four convolutional sites: a torch
            name (``"relu"``, ``"silu"``, ``"tanh"``, ``"sigmoid"``,
            ``"gelu"``...), an adaptive activation ``config()`` dict, a
            zero-argument callable returning a new module, or a list of four
            such values, one per site. Default: ``"relu"``.
        ffn_activation: activation after ``fc1``, in the same forms except
            the list; ``None`` uses ``cnn_activation``. Default: ``None``.
        dropout: dropout probability before ``fc2``. Default: 0.2, the value
            of the paper's published implementation (the Keras example
            used 0.5).
        conv_dropout: channel dropout probability after each pooling
            layer. Default: 0.25.

    Shape:
        - Input: :math:`(N, C, H, W)`.
        - Output: :math:`(N, K)` logits.

    Attributes:
        model_config: JSON dict with ``"name": "kerasnet"`` and the
            constructor arguments, activations given as torch names or
            adaptive activation configs; ``reactivate.models.build_model``
            rebuilds the same architecture from it.

    Example::

        >>> model = KerasNet(cnn_activation="relu", ffn_activation="tanh")
        >>> model(torch.rand(8, 3, 32, 32)).shape
        torch.Size([8, 10])

    .. note::
        ``forward`` converts the input to channels-last memory layout, so
        the convolutional part runs on tensors of that layout. On a 2-core
        CPU, PyTorch's max-pooling ran 13x faster on them than on NCHW
        tensors, a training step about 12% faster and an activation-only
        fine-tuning step about 30% faster. The values are those of the
        NCHW computation up to float rounding.

    .. note::
        ``drop1`` and ``drop2`` zero whole channels (``nn.Dropout2d``),
        while the Keras example's ``Dropout(0.25)`` zeroes single values.

    .. note::
        A custom activation module that is neither a classic torch module
        with default arguments nor an adaptive activation is recorded in
        ``model_config`` by class name only, and ``build_model`` rejects
        such a config.
    """

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 10,
        image_size: int | Sequence[int] = 32,
        cnn_activation: ActivationSpec | Sequence[ActivationSpec] = "relu",
        ffn_activation: ActivationSpec | None = None,
        dropout: float = 0.2,
        conv_dropout: float = 0.25,
    ) -> None:
        super().__init__()
        in_channels = _check_count("in_channels", in_channels, 1)
        num_classes = _check_count("num_classes", num_classes, 1)
        height, width = _check_image_size(image_size)
        dropout = _check_probability("dropout", dropout)
        conv_dropout = _check_probability("conv_dropout", conv_dropout)
        cnn_factories, ffn_factory = self._activation_factories(cnn_activation, ffn_activation)

        self.conv1 = nn.Conv2d(in_channels, 32, kernel_size=3, padding=1)
        self.cnn_act1 = cnn_factories[0]()
        self.conv2 = nn.Conv2d(32, 32, kernel_size=3)
        self.cnn_act2 = cnn_factories[1]()
        self.pool1 = nn.MaxPool2d(2)
        self.drop1 = nn.Dropout2d(conv_dropout)
        self.conv3 = nn.Conv2d(32, 64, kernel_size=3, padding=1)
        self.cnn_act3 = cnn_factories[2]()
        self.conv4 = nn.Conv2d(64, 64, kernel_size=3)
        self.cnn_act4 = cnn_factories[3]()
        self.pool2 = nn.MaxPool2d(2)
        self.drop2 = nn.Dropout2d(conv_dropout)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(64 * _feature_size(height) * _feature_size(width), 512)
        self.ffn_act = ffn_factory()
        self.drop3 = nn.Dropout(dropout)
        self.fc2 = nn.Linear(512, num_classes)

        self._model_config = {
            "name": "kerasnet",
            "in_channels": in_channels,
            "num_classes": num_classes,
            "image_size": height if height == width else [height, width],
            "cnn_activation": self._describe_cnn_activations(),
            "ffn_activation": describe_activation(self.ffn_act),
            "dropout": dropout,
            "conv_dropout": conv_dropout,
        }

    @staticmethod
    def _activation_factories(cnn_activation, ffn_activation):
        if isinstance(cnn_activation, (list, tuple)):
            if len(cnn_activation) != len(_CNN_SITES):
                raise ValueError(
                    f"cnn_activation has {len(cnn_activation)} entries; give one activation "
                    f"or a list of {len(_CNN_SITES)}, one for each of {', '.join(_CNN_SITES)}"
                )
            if ffn_activation is None:
                raise ValueError("ffn_activation=None needs a single cnn_activation; give ffn_activation explicitly")
            cnn_factories = [
                activation_factory(spec, f"cnn_activation[{i}]") for i, spec in enumerate(cnn_activation)
            ]
        else:
            cnn_factories = [activation_factory(cnn_activation, "cnn_activation")] * len(_CNN_SITES)
            if ffn_activation is None:
                ffn_activation = cnn_activation
        ffn_factory = activation_factory(ffn_activation, "ffn_activation")
        return cnn_factories, ffn_factory

    def _describe_cnn_activations(self) -> Any:
        descriptions = [describe_activation(getattr(self, site)) for site in _CNN_SITES]
        if all(d == descriptions[0] for d in descriptions):
            return descriptions[0]
        return descriptions

    @property
    def model_config(self) -> dict[str, Any]:
        """JSON dict of the architecture the constructor built (a copy).

        Replacing activations later does not change it, so it always
        describes the base network that a replacement is applied to.
        """
        return copy.deepcopy(self._model_config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # An fx Proxy has no fixed rank, so only real tensors are checked.
        if isinstance(x, torch.Tensor) and x.dim() != 4:
            raise ValueError(
                f"input of shape {tuple(x.shape)} is invalid for KerasNet; give a batch of images of shape "
                "(N, C, H, W), adding a batch dimension with x.unsqueeze(0) if needed"
            )
        # The convolutional part runs in channels-last layout (see the note
        # in the class docstring).
        x = x.contiguous(memory_format=torch.channels_last)
        x = self.cnn_act1(self.conv1(x))
        x = self.cnn_act2(self.conv2(x))
        x = self.drop1(self.pool1(x))
        x = self.cnn_act3(self.conv3(x))
        x = self.cnn_act4(self.conv4(x))
        x = self.drop2(self.pool2(x))
        x = self.ffn_act(self.fc1(self.flatten(x)))
        return self.fc2(self.drop3(x))
