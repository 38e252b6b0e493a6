"""Random-shift augmentation: each digit moved by up to k pixels, the border filled with background."""

from __future__ import annotations

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
