"""Random affine augmentation: shape, background fill, reproducibility, digits stay digits."""

from __future__ import annotations

import math

import pytest
import torch

from models.data.augment import random_affine, tta_views
from models.errors import ConfigError
from models.nets.configs import TrainConfig


def blob(n: int = 6, fill: float = -0.5) -> torch.Tensor:
    """(n, 2, 14, 14) batches of a bright 4x4 square in the middle of a `fill` background."""
    x = torch.full((n, 2, 14, 14), fill)
    x[:, :, 5:9, 5:9] = 2.0
    return x


def test_no_warp_is_the_identity():
    x = blob()
    assert random_affine(x, 0.0, 0.0, generator=torch.Generator(), fill=-0.5) is x


def test_warps_each_digit_on_its_own_and_fills_the_border_with_background():
    x = blob()
    warped = random_affine(x, 20.0, 0.15, generator=torch.Generator().manual_seed(0), fill=-0.5)
    assert warped.shape == x.shape and warped.dtype == x.dtype
    flat = warped.reshape(12, -1)
    assert len({tuple(row.tolist()) for row in flat}) == 12  # 12 digits, 12 different warps
    corners = warped[:, :, [0, 0, -1, -1], [0, -1, 0, -1]]
    assert torch.allclose(corners, torch.tensor(-0.5))  # rotated-in corners are background, not 0
    # The square stays a square of about the same area near the centre: a digit stays recognisable.
    area = (warped > 0.75).sum((2, 3)).float()
    assert area.min() >= 16 * 0.6 and area.max() <= 16 * 1.5
    assert (warped[:, :, 6:8, 6:8] > 1.5).all()


def test_same_generator_same_warp():
    x = blob()
    a = random_affine(x, 10.0, 0.1, generator=torch.Generator().manual_seed(3), fill=-0.5)
    b = random_affine(x, 10.0, 0.1, generator=torch.Generator().manual_seed(3), fill=-0.5)
    c = random_affine(x, 10.0, 0.1, generator=torch.Generator().manual_seed(4), fill=-0.5)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_a_quarter_turn_turns_the_image():
    x = torch.zeros(1, 2, 14, 14)
    x[0, :, 2, 7] = 1.0  # a dot above the centre
    gen = torch.Generator().manual_seed(0)
    while True:  # draw until the angle is close to ±90° (the angle is uniform in [-90°, 90°))
        state = gen.get_state()
        angle = (torch.rand(2, 2, generator=gen)[0, 0] * 2 - 1) * math.pi / 2
        if abs(abs(angle) - math.pi / 2) < 0.05:
            break
    gen.set_state(state)
    turned = random_affine(x, 90.0, 0.0, generator=gen, fill=0.0)[0, 0]
    row, col = divmod(int(turned.argmax()), 14)
    assert abs(row - 7) <= 1 and abs(col - 7) >= 4  # the dot moved from above the centre to its side


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("rotate", -1.0, "rotate must be between 0 and 45"),
        ("scale", 0.5, "scale must be in"),
        ("schedule", "step", "schedule must be one of"),
    ],
)
def test_bad_augmentation_settings_are_rejected(field, value, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**{field: value})


def test_tta_views_are_the_batch_and_its_four_one_pixel_shifts():
    x = torch.full((3, 2, 14, 14), -0.5)
    x[:, :, 7, 7] = 1.0
    assert tta_views(x, "none", fill=-0.5) == [x]
    views = tta_views(x, "shift", fill=-0.5)
    assert len(views) == 5 and torch.equal(views[0], x)
    dots = {tuple(int(i) for i in divmod(int(v[0, 0].argmax()), 14)) for v in views}
    assert dots == {(7, 7), (8, 7), (6, 7), (7, 8), (7, 6)}
    for v in views:  # both digits of a pair move alike; the uncovered border is background
        assert v.shape == x.shape and torch.equal(v[:, 0], v[:, 1]) and (v == -0.5).sum() == 3 * 2 * (14 * 14 - 1)
