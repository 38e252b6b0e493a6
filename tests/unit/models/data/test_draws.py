"""make_draw, PairSet.subset, Normalisation and PixelNormalisation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.data.draws import Normalisation, PairSet, PixelNormalisation, draw_training_pairs, make_draw
from models.data.pools import DigitPools, Digits, load_pools
from models.errors import DataError


def _coded_digits(n: int, offset: int) -> Digits:
    """Digit i is an image filled with offset + i, so a pair's pixels tell which pool digits it took."""
    codes = torch.arange(offset, offset + n, dtype=torch.float32)
    return Digits(images=codes.view(n, 1, 1).expand(n, 14, 14).contiguous(), labels=torch.arange(n) % 10)


def _coded_pools(n_train: int = 60, n_test: int = 40) -> DigitPools:
    return DigitPools(train=_coded_digits(n_train, 0), test=_coded_digits(n_test, 1000), source="coded")


def _digit_ids(pairs: PairSet, offset: int) -> torch.Tensor:
    return pairs.input[:, :, 0, 0].long() - offset  # (N, 2) positions in the pool


def test_pairs_are_distinct_pool_digits_with_consistent_classes_and_targets():
    pools = _coded_pools()
    draw = make_draw(pools, seed=3, n_pairs=20)
    for pairs, digits, offset in ((draw.train, pools.train, 0), (draw.test, pools.test, 1000)):
        assert pairs.input.shape == (20, 2, 14, 14) and pairs.input.dtype == torch.float32
        assert pairs.classes.shape == (20, 2) and pairs.classes.dtype == torch.int64
        assert pairs.target.shape == (20,) and pairs.target.dtype == torch.int64
        ids = _digit_ids(pairs, offset)
        assert ids.min() >= 0 and ids.max() < len(digits)  # train pairs from the train pool, test from test
        assert ids.unique().numel() == 40  # 2N distinct digits: none used twice
        assert torch.equal(pairs.input, digits.images[ids])
        assert torch.equal(pairs.classes, digits.labels[ids])
        assert torch.equal(pairs.target, (pairs.classes[:, 0] <= pairs.classes[:, 1]).long())
    assert len(draw.train) == len(draw.test) == 20 and draw.seed == 3


def test_same_seed_same_tensors_other_seed_other_pairs():
    pools = load_pools()
    first, again, other = (make_draw(pools, seed=s, n_pairs=200) for s in (7, 7, 8))
    for name in ("train", "test"):
        for field in ("input", "target", "classes"):
            assert torch.equal(getattr(getattr(first, name), field), getattr(getattr(again, name), field))
        assert not torch.equal(getattr(first, name).input, getattr(other, name).input)


def test_global_rng_is_left_alone():
    pools = _coded_pools()
    torch.manual_seed(0)
    state = torch.get_rng_state()
    draw = make_draw(pools, seed=1, n_pairs=10)
    assert torch.equal(torch.get_rng_state(), state)
    torch.manual_seed(123)
    assert torch.equal(make_draw(pools, seed=1, n_pairs=10).train.input, draw.train.input)


def test_train_pairs_do_not_depend_on_the_test_pool():
    small_test = DigitPools(train=_coded_digits(60, 0), test=_coded_digits(20, 1000), source="coded")
    full = make_draw(_coded_pools(), seed=5, n_pairs=10)
    assert torch.equal(full.train.input, make_draw(small_test, seed=5, n_pairs=10).train.input)


def test_embedded_draw_keeps_train_and_test_digits_apart():
    draw = make_draw(load_pools(), seed=0, n_pairs=200)
    train = {digit.numpy().tobytes() for digit in draw.train.input.reshape(-1, 14, 14)}
    test = {digit.numpy().tobytes() for digit in draw.test.input.reshape(-1, 14, 14)}
    assert len(train) == len(test) == 400  # no digit twice inside a set
    assert not train & test
    assert 0.4 < draw.train.target.float().mean().item() < 0.7  # P(d1 <= d2) = 0.55 for uniform digits


def test_n_pairs_larger_than_the_pool_allows():
    with pytest.raises(
        DataError,
        match=r"^n_pairs=1300 needs 2600 distinct digits but the training pool has 2500; use n_pairs <= 1250$",
    ):
        make_draw(load_pools(), seed=0, n_pairs=1300)
    assert len(make_draw(load_pools(), seed=0, n_pairs=1250).test) == 1250


def test_test_pool_can_be_the_limit():
    message = "n_pairs=25 needs 50 distinct digits but the test pool has 40; use n_pairs <= 20$"
    with pytest.raises(DataError, match=message):
        make_draw(_coded_pools(), seed=0, n_pairs=25)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_pairs": 0}, "n_pairs must be at least 1, but got n_pairs=0"),
        ({"seed": -1}, "seed must be a non-negative integer, but got seed=-1"),
    ],
)
def test_bad_draw_arguments(kwargs, match):
    with pytest.raises(DataError, match=match):
        make_draw(_coded_pools(), **{"seed": 0, "n_pairs": 5, **kwargs})


def test_subset_accepts_numpy_and_long_tensor_indices():
    pairs = make_draw(_coded_pools(), seed=2, n_pairs=20).train
    from_numpy = pairs.subset(np.array([3, 0, 7]))
    from_tensor = pairs.subset(torch.tensor([3, 0, 7]))
    for field in ("input", "target", "classes"):
        assert torch.equal(getattr(from_numpy, field), getattr(pairs, field)[[3, 0, 7]])
        assert torch.equal(getattr(from_tensor, field), getattr(from_numpy, field))
    assert len(from_numpy) == 3
    with pytest.raises(TypeError, match="integer positions"):
        pairs.subset(np.ones(20, dtype=bool))


def test_normalisation_fitted_on_train_is_applied_unchanged_to_test():
    draw = make_draw(load_pools(), seed=0, n_pairs=200)
    norm = Normalisation.fit(draw.train)
    train = norm.apply(draw.train)
    assert abs(train.input.mean().item()) < 1e-4 and abs(train.input.std().item() - 1) < 1e-4
    assert train.target is draw.train.target and train.classes is draw.train.classes
    assert draw.train.input.max() > 200  # the raw pairs are not modified in place

    shifted = PairSet(input=draw.test.input * 2 + 50, target=draw.test.target, classes=draw.test.classes)
    test = norm.apply(shifted)
    assert torch.allclose(test.input, (shifted.input - norm.mean) / norm.std)
    assert test.input.mean().item() > 1  # test statistics did not leak into the fit
    assert Normalisation.fit(draw.train) == norm  # fitting depends on the training pairs only


def test_normalisation_refuses_constant_or_empty_inputs():
    pairs = make_draw(_coded_pools(), seed=0, n_pairs=10).train
    constant = PairSet(input=torch.zeros_like(pairs.input), target=pairs.target, classes=pairs.classes)
    with pytest.raises(DataError, match="std=0.0"):
        Normalisation.fit(constant)
    with pytest.raises(DataError, match="empty pair set"):
        Normalisation.fit(pairs.subset(np.array([], dtype=np.int64)))


def test_training_pairs_alone_are_the_draws_training_pairs():
    """Model selection draws training pairs without the test pool: the same tensors as the full draw's."""
    pools = load_pools()
    alone = draw_training_pairs(pools, seed=7, n_pairs=100)
    full = make_draw(pools, seed=7, n_pairs=100).train
    assert torch.equal(alone.input, full.input) and torch.equal(alone.classes, full.classes)
    with pytest.raises(DataError, match="seed"):
        draw_training_pairs(pools, seed=-1)


def test_pixel_normalisation_standardises_each_pixel_and_zeroes_pixels_no_training_digit_inks():
    draw = make_draw(load_pools(), seed=0, n_pairs=200)
    norm = PixelNormalisation.fit(draw.train)
    train = norm.apply(draw.train).input.double()
    raw = draw.train.input.double()
    varying = raw.std(0) > 0
    assert 0 < int((~varying).sum()) < varying.numel()  # the embedded digits leave some corners blank
    assert train.mean(0).abs().max() < 1e-4
    assert torch.allclose(train.std(0)[varying], torch.ones(int(varying.sum()), dtype=torch.float64), atol=1e-4)
    assert torch.equal(train[:, ~varying], torch.zeros_like(train[:, ~varying]))

    inked = draw.test.input.clone()
    inked[:, ~varying] = 255.0  # ink where no training digit has any
    test = norm.apply(PairSet(input=inked, target=draw.test.target, classes=draw.test.classes)).input
    assert torch.equal(test[:, ~varying], torch.zeros_like(test[:, ~varying]))  # bounded: set to 0, not ink / 0
    expected = (draw.test.input.double() - raw.mean(0)) / raw.std(0)
    assert torch.allclose(test[:, varying].double(), expected[:, varying], atol=1e-3)  # the training statistics
    assert norm.fill is None  # no single blank value: augmentation is refused with it


def test_pixel_normalisation_refuses_too_few_or_constant_inputs():
    pairs = make_draw(_coded_pools(), seed=0, n_pairs=10).train
    with pytest.raises(DataError, match="at least 2"):
        PixelNormalisation.fit(pairs.subset(np.array([0], dtype=np.int64)))
    constant = PairSet(input=torch.ones_like(pairs.input), target=pairs.target, classes=pairs.classes)
    with pytest.raises(DataError, match="every pixel of the training inputs is constant"):
        PixelNormalisation.fit(constant)
