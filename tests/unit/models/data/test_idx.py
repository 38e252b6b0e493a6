"""read_idx on real files the tests write: plain, gzip, and each kind of broken file."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from models.data.idx import read_idx
from models.errors import DataError


def test_reads_bytes_laid_out_as_the_idx_spec_says(tmp_path):
    # Hand-written, independent of the test writer: 00 00 08 02, sizes 2 and 3 big-endian, six data bytes.
    path = tmp_path / "tiny-idx2-ubyte"
    path.write_bytes(bytes([0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5, 255]))
    array = read_idx(path)
    assert array.dtype == np.uint8
    assert array.tolist() == [[1, 2, 3], [4, 5, 255]]


@pytest.mark.parametrize("name", ["images-idx3-ubyte", "images-idx3-ubyte.gz"])
def test_round_trips_plain_and_gzip(tmp_path, write_idx, name):
    images = np.random.default_rng(0).integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
    array = read_idx(write_idx(tmp_path / name, images))
    assert array.shape == (5, 28, 28)
    assert np.array_equal(array, images)
    array[0, 0, 0] = 7  # a writable copy, so torch.from_numpy does not warn


def test_reads_gzip_content_without_gz_suffix(tmp_path, write_idx):
    labels = np.arange(10, dtype=np.uint8)
    packed = write_idx(tmp_path / "labels.gz", labels)
    renamed = packed.rename(tmp_path / "labels-idx1-ubyte")
    assert read_idx(renamed).tolist() == list(range(10))


def _idx_bytes(tmp_path, write_idx, **kwargs) -> bytes:
    return write_idx(tmp_path / "good", np.zeros((2, 3), dtype=np.uint8), **kwargs).read_bytes()


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("wrong-magic", lambda good: b"\x12\x34" + good[2:], r"wrong-magic: not an IDX file \(magic bytes 12 34 08 02"),
        ("zero-ndim", lambda good: good[:3] + b"\x00", "not an IDX file"),
        ("too-short", lambda good: good[:3], r"too-short: truncated IDX file \(3 bytes"),
        ("short-header", lambda good: good[:9], "short-header: truncated IDX header"),
        (
            "short-data",
            lambda good: good[:-1],
            r"short-data: truncated data \(header shape \(2, 3\) needs 6 bytes, file holds 5",
        ),
        ("long-data", lambda good: good + b"\x00", "long-data: trailing bytes after the data"),
        ("short.gz", lambda good: gzip.compress(good)[:-12], "short.gz: truncated gzip file"),
        ("garbage.gz", lambda good: b"not gzip at all", "garbage.gz: not a valid gzip file"),
    ],
)
def test_bad_files_name_the_file_and_the_problem(tmp_path, write_idx, name, content, match):
    path = tmp_path / name
    path.write_bytes(content(_idx_bytes(tmp_path, write_idx)))
    with pytest.raises(DataError, match=match):
        read_idx(path)


def test_unsupported_dtype_code_is_named(tmp_path, write_idx):
    path = tmp_path / "floats"
    path.write_bytes(_idx_bytes(tmp_path, write_idx, code=0x0D))
    with pytest.raises(DataError, match=r"floats: unsupported IDX dtype code 0x0D \(float32\); only 0x08"):
        read_idx(path)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="nowhere-idx1-ubyte: file not found"):
        read_idx(tmp_path / "nowhere-idx1-ubyte")
