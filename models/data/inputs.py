"""Pairs of digit images from files, for a trained model to answer: two PNG images, or one NumPy (.npy) or
IDX file of pairs, shape (N, 2, 28, 28) or (N, 2, 14, 14). 28x28 digits are average-pooled to 14x14 as the
training digits were; pixels are MNIST's 0..255, a white digit on black."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from models.data.idx import read_idx
from models.data.pools import pool_digits
from models.errors import DataError

__all__ = ["read_pairs"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


def read_pairs(paths: Sequence[str | Path]) -> torch.Tensor:
    """(N, 2, 14, 14) float32 raw pixels: from two image files (one pair), or from one file of pairs."""
    files = [Path(p) for p in paths]
    for path in files:
        if not path.is_file():
            raise DataError(f"{path}: no such file.")
    if len(files) == 2 and all(p.suffix.lower() in IMAGE_SUFFIXES for p in files):
        return pool_digits(np.stack([_read_image(p) for p in files]))[None]  # (1, 2, 14, 14)
    if len(files) != 1:
        raise DataError(
            f"give two images (the pair a, b) or one .npy/IDX file of pairs, but got {len(files)} file(s): "
            + ", ".join(str(p) for p in files)
        )
    (path,) = files
    if path.suffix.lower() == ".npy":
        try:
            array = np.load(path, allow_pickle=False)
        except ValueError as error:
            raise DataError(f"{path}: not a NumPy array file ({error}).") from None
    elif path.suffix.lower() in IMAGE_SUFFIXES:
        raise DataError(f"{path}: one image is half a pair; give the second image too.")
    else:
        array = read_idx(path)
    if array.ndim != 4 or array.shape[1] != 2:
        raise DataError(f"{path}: pairs must have shape (N, 2, 28, 28) or (N, 2, 14, 14), but got {array.shape}.")
    return pool_digits(array)


def _read_image(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            pixels = np.asarray(image.convert("L"), dtype=np.float32)
    except (UnidentifiedImageError, OSError) as error:
        raise DataError(f"{path}: not an image ({error}).") from None
    if pixels.shape not in ((28, 28), (14, 14)):
        raise DataError(
            f"{path}: a digit image must be 28x28 or 14x14 pixels, but got {pixels.shape[1]}x{pixels.shape[0]}."
        )
    return pixels
