"""Shared test helpers: tests write the real IDX files they read (no mocks, no downloads)."""

from __future__ import annotations

import gzip
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest


def _write_idx(path: Path, array: np.ndarray, *, code: int = 0x08) -> Path:
    """Write `array` as an IDX file (magic 00 00 code ndim, big-endian int32 sizes, bytes); gzip when named .gz."""
    array = np.asarray(array, dtype=np.uint8)
    raw = struct.pack(">BBBB", 0, 0, code, array.ndim) + struct.pack(f">{array.ndim}i", *array.shape) + array.tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(raw) if path.suffix == ".gz" else raw)
    return path


@pytest.fixture
def write_idx() -> Callable[..., Path]:
    """write_idx(path, array, *, code=0x08) -> path."""
    return _write_idx
