"""Read IDX files, the format the MNIST digits ship in, plain or gzip-compressed.

IDX layout: magic 0x00 0x00 <dtype code> <ndim>, then ndim big-endian int32 sizes, then
the data in C order. MNIST uses only dtype 0x08 (unsigned byte), so that is all we read;
any other code is refused with its name rather than silently reinterpreted.
Every problem is a `DataError` whose one line names the file.
"""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from pathlib import Path

import numpy as np

from models.errors import DataError

_GZIP_MAGIC = b"\x1f\x8b"
_UBYTE = 0x08
_DTYPE_NAMES = {  # the codes the IDX format defines, named in the refusal of all but 0x08
    0x08: "unsigned byte",
    0x09: "signed byte",
    0x0B: "int16",
    0x0C: "int32",
    0x0D: "float32",
    0x0E: "float64",
}


def read_idx(path: Path) -> np.ndarray:
    """Return the uint8 array an IDX file holds, shaped as its header says (gzip when named .gz or gzip inside)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found.") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc}).") from None
    if path.suffix == ".gz" or raw.startswith(_GZIP_MAGIC):
        raw = _gunzip(path, raw)
    return _parse(path, raw)


def _gunzip(path: Path, raw: bytes) -> bytes:
    try:
        return gzip.decompress(raw)
    except EOFError:
        raise DataError(f"{path}: truncated gzip file (the compressed stream ends early); download it again.") from None
    except (OSError, zlib.error) as exc:
        raise DataError(f"{path}: not a valid gzip file ({exc}).") from None


def _parse(path: Path, raw: bytes) -> np.ndarray:
    if len(raw) < 4:
        raise DataError(f"{path}: truncated IDX file ({len(raw)} bytes, shorter than the 4-byte magic).")
    zero1, zero2, code, ndim = raw[:4]
    if zero1 != 0 or zero2 != 0 or ndim == 0:
        raise DataError(
            f"{path}: not an IDX file (magic bytes {raw[:4].hex(' ')}, expected 00 00 <dtype code> <ndim >= 1>)."
        )
    if code != _UBYTE:
        name = _DTYPE_NAMES.get(code, "not an IDX dtype")
        raise DataError(
            f"{path}: unsupported IDX dtype code 0x{code:02X} ({name}); only 0x08 (unsigned byte, as in MNIST) is read."
        )
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated IDX header ({len(raw)} bytes, the {ndim} sizes need {header}).")
    shape = struct.unpack(f">{ndim}i", raw[4:header])
    if any(size < 0 for size in shape):
        raise DataError(f"{path}: negative size in IDX header {shape}.")
    expected = math.prod(shape)
    found = len(raw) - header
    if found != expected:
        problem = "truncated data" if found < expected else "trailing bytes after the data"
        raise DataError(f"{path}: {problem} (header shape {shape} needs {expected} bytes, file holds {found}).")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape).copy()


def describe_source(source: str) -> str:
    """A pool source (DigitPools.source: "embedded" or "idx:<dir>") as people read it: 'the embedded digits' or 'the MNIST IDX files in <dir>'."""
    return "the embedded digits" if source == "embedded" else f"the MNIST IDX files in {source.removeprefix('idx:')}"
