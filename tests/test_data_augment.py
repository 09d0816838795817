"""Batched flip-and-translate augmentation against a per-image reference."""

import pytest
import torch

from reactivate.data import FlipTranslateParams, RandomFlipTranslate


def reference(image, flip, dy, dx):
    """Flip, then move by (dy, dx) with torch.roll and clear the wrapped-around pixels."""
    if flip:
        image = image.flip(-1)
    out = torch.roll(image, shifts=(dy, dx), dims=(-2, -1))
    if dy > 0:
        out[:, :dy, :] = 0
    elif dy < 0:
        out[:, dy:, :] = 0
    if dx > 0:
        out[:, :, :dx] = 0
    elif dx < 0:
        out[:, :, dx:] = 0
    return out


def numbered_images(n, channels=3, size=32):
    # Values 1..N*C*H*W are unique and non-zero, so a zero can only be fill.
    return torch.arange(1, n * channels * size * size + 1, dtype=torch.float32).reshape(n, channels, size, size)


def test_matches_per_image_reference():
    augment = RandomFlipTranslate()
    images = numbered_images(64)
    params = augment.sample(64, 32, 32, generator=torch.Generator().manual_seed(3))
    out = augment.apply(images, params)
    for i in range(64):
        expected = reference(images[i], bool(params.flip[i]), int(params.shift_y[i]), int(params.shift_x[i]))
        assert torch.equal(out[i], expected), f"image {i}"


def test_call_equals_sample_then_apply():
    augment = RandomFlipTranslate()
    images = torch.rand(16, 3, 32, 32)
    out = augment(images, generator=torch.Generator().manual_seed(11))
    params = augment.sample(16, 32, 32, generator=torch.Generator().manual_seed(11))
    assert torch.equal(out, augment.apply(images, params))


def test_parameters_vary_per_image():
    params = RandomFlipTranslate().sample(256, 32, 32, generator=torch.Generator().manual_seed(0))
    flips = int(params.flip.sum())
    assert 80 < flips < 176
    # 10 % of 32 pixels is 3.2, so shifts are whole pixels in -3..3, all of them drawn.
    assert set(params.shift_y.tolist()) == set(range(-3, 4))
    assert set(params.shift_x.tolist()) == set(range(-3, 4))
    assert params.shift_y.dtype == torch.int64


def test_output_differs_between_images():
    images = torch.rand(1, 3, 32, 32).expand(32, 3, 32, 32).contiguous()
    out = RandomFlipTranslate()(images, generator=torch.Generator().manual_seed(1))
    distinct = {row.numpy().tobytes() for row in out.flatten(1)}
    assert len(distinct) > 10


def test_zero_fill_where_shifted_in():
    augment = RandomFlipTranslate(flip_p=0.0)
    images = numbered_images(2, channels=1, size=10)
    params = FlipTranslateParams(
        flip=torch.tensor([False, False]), shift_y=torch.tensor([2, -1]), shift_x=torch.tensor([-3, 1])
    )
    out = augment.apply(images, params)
    assert bool((out[0, :, :2, :] == 0).all())
    assert bool((out[0, :, :, -3:] == 0).all())
    assert bool((out[0, :, 2:, :-3] != 0).all())
    assert bool((out[1, :, -1:, :] == 0).all())
    assert bool((out[1, :, :, :1] == 0).all())
    # Content moved: out[0, 0, 2, 0] came from row 0, column 3 of the input.
    assert out[0, 0, 2, 0] == images[0, 0, 0, 3]


def test_flip_only_mirrors():
    augment = RandomFlipTranslate(flip_p=1.0, max_shift=0.0)
    images = torch.rand(5, 3, 16, 16)
    assert torch.equal(augment(images), images.flip(-1))


def test_identity_settings():
    images = torch.rand(5, 3, 16, 16)
    assert torch.equal(RandomFlipTranslate(flip_p=0.0, max_shift=0.0)(images), images)


def test_deterministic_for_seed():
    augment = RandomFlipTranslate()
    images = torch.rand(32, 3, 32, 32)
    first = augment(images, generator=torch.Generator().manual_seed(7))
    second = augment(images, generator=torch.Generator().manual_seed(7))
    third = augment(images, generator=torch.Generator().manual_seed(8))
    assert torch.equal(first, second)
    assert not torch.equal(first, third)


def test_non_square_images_use_own_limits():
    # 10 % of 20 rows is 2 and of 50 columns is 5.
    params = RandomFlipTranslate().sample(500, 20, 50, generator=torch.Generator().manual_seed(0))
    assert int(params.shift_y.abs().max()) == 2
    assert int(params.shift_x.abs().max()) == 5


def test_keeps_dtype_and_input():
    images = torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8)
    before = images.clone()
    out = RandomFlipTranslate()(images, generator=torch.Generator().manual_seed(0))
    assert out.dtype == torch.uint8
    assert torch.equal(images, before)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"flip_p": 1.5}, "flip_p=1.5 is invalid"),
        ({"flip_p": -0.1}, "flip_p=-0.1 is invalid"),
        ({"max_shift": 1.0}, "max_shift=1.0 is invalid"),
        ({"max_shift": "0.1"}, "max_shift='0.1' is invalid"),
    ],
)
def test_invalid_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        RandomFlipTranslate(**kwargs)


def test_rejects_unbatched_input():
    with pytest.raises(ValueError, match=r"shape \(N, C, H, W\), got \(3, 32, 32\)"):
        RandomFlipTranslate()(torch.rand(3, 32, 32))


def test_rejects_generator_on_other_device():
    # Without a GPU, "meta" serves as the second device.
    images = torch.empty(2, 3, 8, 8, device="meta")
    with pytest.raises(ValueError, match="generator is on cpu but the images are on meta"):
        RandomFlipTranslate()(images, generator=torch.Generator().manual_seed(0))
