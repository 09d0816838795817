"""Batched random horizontal flip and integer translation on the images' device."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = ["FlipTranslateParams", "RandomFlipTranslate"]


@dataclass(frozen=True)
class FlipTranslateParams:
    """Per-image choices of one :class:`RandomFlipTranslate` call.

    Attributes:
        flip: bool tensor (N,); True mirrors the image left to right.
        shift_y: int64 tensor (N,); the content moves down by this many
            pixels (up when negative).
        shift_x: int64 tensor (N,); the content moves right by this many
            pixels (left when negative), applied after the flip.
    """

    flip: torch.Tensor
    shift_y: torch.Tensor
    shift_x: torch.Tensor


def _max_pixels(fraction: float, size: int) -> int:
    # The small tolerance keeps products such as 0.1 * 30 = 3.0000000000000004
    # or 0.29 * 100 = 28.999999999999996 on the intended integer.
    return int(math.floor(fraction * size + 1e-6))


def _check_generator(generator: torch.Generator | None, device: torch.device) -> None:
    if generator is None:
        return
    gen_device = generator.device
    same = gen_device.type == device.type and (
        gen_device.index is None or device.index is None or gen_device.index == device.index
    )
    if not same:
        raise ValueError(
            f"generator is on {gen_device} but the images are on {device}; "
            f"create it with torch.Generator(device={str(device)!r})"
        )


class RandomFlipTranslate:
    r"""Random horizontal flip and integer translation of every image in a batch.

    Each image independently is mirrored left to right with probability
    ``flip_p`` and then moved by whole pixels, ``dy`` rows and ``dx``
    columns, drawn uniformly from :math:`\{-s_y, \dots, s_y\}` and
    :math:`\{-s_x, \dots, s_x\}` with :math:`s_y = \lfloor
    \text{max\_shift} \cdot H \rfloor` and :math:`s_x = \lfloor
    \text{max\_shift} \cdot W \rfloor` (3 for 32x32 images and the
    default 0.1). Pixels moved in from outside the image are 0:

    .. math::
        \text{out}[n, c, i, j] = \text{src}[n, c, i - dy_n, j - dx_n]

    where ``src`` is the image after the optional flip, and 0 where the
    index falls outside the image. This is the training augmentation of the
    adaptive-activation paper (flip with probability 0.5, shifts of up to
    10 % of width and height). The whole batch takes one zero pad and one
    gather on the images' device, with no loop over images.

    Args:
        flip_p: probability of the horizontal flip, in [0, 1]. Default: 0.5.
        max_shift: largest shift as a fraction of height and width, in
            [0, 1). Default: 0.1.

    Shape:
        - Input: :math:`(N, C, H, W)`, any dtype, any device.
        - Output: the same shape, dtype and device (a new tensor).

    Example::

        >>> augment = RandomFlipTranslate()
        >>> generator = torch.Generator().manual_seed(0)
        >>> augment(torch.rand(64, 3, 32, 32), generator=generator).shape
        torch.Size([64, 3, 32, 32])

    .. note::
        Pass a ``generator`` on the images' device for reproducible draws;
        without one the global generator of that device is used.
    """

    def __init__(self, flip_p: float = 0.5, max_shift: float = 0.1) -> None:
        if isinstance(flip_p, bool) or not isinstance(flip_p, (int, float)) or not 0.0 <= flip_p <= 1.0:
            raise ValueError(f"flip_p={flip_p!r} is invalid; give a probability in [0, 1]")
        if isinstance(max_shift, bool) or not isinstance(max_shift, (int, float)) or not 0.0 <= max_shift < 1.0:
            raise ValueError(f"max_shift={max_shift!r} is invalid; give a fraction of the image size in [0, 1)")
        self.flip_p = float(flip_p)
        self.max_shift = float(max_shift)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(flip_p={self.flip_p}, max_shift={self.max_shift})"

    def sample(
        self,
        batch_size: int,
        height: int,
        width: int,
        *,
        device: torch.device | str | None = None,
        generator: torch.Generator | None = None,
    ) -> FlipTranslateParams:
        """Draw the flip and shifts for ``batch_size`` images of ``height x width``.

        The draws come in a fixed order (flips, row shifts, column shifts), so
        a generator in the same state gives the same parameters.
        """
        device = torch.device("cpu") if device is None else torch.device(device)
        _check_generator(generator, device)
        max_y = _max_pixels(self.max_shift, height)
        max_x = _max_pixels(self.max_shift, width)
        size = (batch_size,)
        flip = torch.rand(size, generator=generator, device=device) < self.flip_p
        shift_y = torch.randint(-max_y, max_y + 1, size, generator=generator, device=device)
        shift_x = torch.randint(-max_x, max_x + 1, size, generator=generator, device=device)
        return FlipTranslateParams(flip, shift_y, shift_x)

    def apply(self, images: torch.Tensor, params: FlipTranslateParams) -> torch.Tensor:
        """Flip and shift ``images`` with the per-image values in ``params``, in one gather."""
        n, channels, height, width = images.shape
        device = images.device
        # Source row and column of every output pixel, per image.
        rows = torch.arange(height, device=device) - params.shift_y.to(device).unsqueeze(1)
        cols = torch.arange(width, device=device) - params.shift_x.to(device).unsqueeze(1)
        cols = torch.where(params.flip.to(device).unsqueeze(1), width - 1 - cols, cols)
        # One zero row and one zero column appended to every image give the
        # pixels moved in from outside a source to read, which is cheaper
        # than masking the output afterwards.
        rows = torch.where((rows >= 0) & (rows < height), rows, height)
        cols = torch.where((cols >= 0) & (cols < width), cols, width)
        padded = F.pad(images, (0, 1, 0, 1))

        flat_index = rows.unsqueeze(2) * (width + 1) + cols.unsqueeze(1)
        flat_index = flat_index.reshape(n, 1, height * width).expand(n, channels, height * width)
        out = padded.reshape(n, channels, (height + 1) * (width + 1)).gather(2, flat_index)
        return out.reshape(n, channels, height, width)

    def __call__(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Augment a batch; see the class description."""
        if not isinstance(images, torch.Tensor) or images.dim() != 4:
            shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
            raise ValueError(f"RandomFlipTranslate needs a batch of shape (N, C, H, W), got {shape}")
        n, _, height, width = images.shape
        params = self.sample(n, height, width, device=images.device, generator=generator)
        return self.apply(images, params)
