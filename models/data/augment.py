"""Augmentation of the digits of a batch of pairs: random shifts and small random affine warps while
training, fixed shifted views for test-time augmentation.

Each of the 2B digits of a (B, 2, H, W) batch gets its own draw from the model's own generator,
so augmentation is reproducible per model and independent across the models trained together.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def random_shift(x: Tensor, max_shift: int, *, generator: torch.Generator, fill: float) -> Tensor:
    """(B, 2, H, W) -> (B, 2, H, W), each of the 2B digits shifted independently."""
    if max_shift == 0:
        return x
    b, c, h, w = x.shape
    padded = F.pad(x, (max_shift,) * 4, value=fill)
    offsets = torch.randint(0, 2 * max_shift + 1, (2, b, c), generator=generator).to(x.device)
    rows = offsets[0, :, :, None] + torch.arange(h, device=x.device)  # (B, C, H)
    cols = offsets[1, :, :, None] + torch.arange(w, device=x.device)  # (B, C, W)
    bi = torch.arange(b, device=x.device)[:, None, None, None]
    ci = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[bi, ci, rows[:, :, :, None], cols[:, :, None, :]]


def random_affine(x: Tensor, degrees: float, scale: float, *, generator: torch.Generator, fill: float) -> Tensor:
    """(B, 2, H, W) -> (B, 2, H, W), each digit rotated by up to ±`degrees` and zoomed by a factor
    in [1 - scale, 1 + scale] about its centre (bilinear); uncovered pixels get `fill`."""
    if degrees == 0 and scale == 0:
        return x
    b, c, h, w = x.shape
    n = b * c
    uniform = torch.rand(2, n, generator=generator).to(x.device, torch.float32) * 2 - 1  # in [-1, 1)
    angle = uniform[0] * math.radians(degrees)
    zoom = 1 + uniform[1] * scale
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom  # output -> input coordinates
    zero = torch.zeros_like(cos)
    theta = torch.stack([torch.stack([cos, -sin, zero], -1), torch.stack([sin, cos, zero], -1)], -2)
    grid = F.affine_grid(theta, [n, 1, h, w], align_corners=False)
    flat = x.reshape(n, 1, h, w).float() - fill  # warp around the background level, so borders fill with it
    warped = F.grid_sample(flat, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return (warped + fill).reshape(b, c, h, w).to(x.dtype)


_SHIFTS = ((0, 0), (1, 0), (-1, 0), (0, 1), (0, -1))


def tta_views(x: Tensor, tta: str, *, fill: float) -> list[Tensor]:
    """The views a model scores and averages at test time: `none`, the batch itself; `shift`, the batch
    and its four 1-pixel shifts (up, down, left, right; both digits alike), borders filled with `fill`."""
    if tta == "none":
        return [x]
    padded = F.pad(x, (1, 1, 1, 1), value=fill)
    h, w = x.shape[-2:]
    return [padded[..., 1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w] for dy, dx in _SHIFTS]
