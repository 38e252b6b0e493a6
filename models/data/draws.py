"""Draws: seeded sets of digit pairs, made as the course's data generator makes them.

A pair set of N pairs takes 2N distinct digits of one pool (randperm(pool)[:2N].view(N, 2)),
stacks each pair as two channels, and labels it 1 when the first digit is <= the second.
Train pairs come from the training pool and test pairs from the test pool, each with its own
generator derived from the seed, so one set never depends on the other's size and the global
RNG is never touched. Normalisation statistics are fitted on training inputs only: one mean and std
over every pixel (`Normalisation`, the course's), or each pixel's own (`PixelNormalisation`), or none
(`RawPixels`, the 0..255 values themselves).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from models.data.pools import DigitPools, Digits
from models.data.sizes import DEFAULT_N_PAIRS
from models.errors import DataError

_TRAIN_STREAM, _TEST_STREAM = 0, 1


@dataclass(frozen=True)
class PairSet:
    """N digit pairs with the comparison target and both digits' classes (for auxiliary losses)."""

    input: torch.Tensor  # (N, 2, 14, 14) float32, channel k is digit k of the pair
    target: torch.Tensor  # (N,) int64, 1 if classes[:, 0] <= classes[:, 1] else 0
    classes: torch.Tensor  # (N, 2) int64, the two digits 0..9

    def __len__(self) -> int:
        return self.target.shape[0]

    def subset(self, index: np.ndarray | torch.Tensor) -> PairSet:
        """The pairs at `index` (integer positions, numpy as KFold gives them, or a LongTensor)."""
        index = torch.as_tensor(index)
        if index.dtype == torch.bool or index.is_floating_point() or index.is_complex():
            raise TypeError(f"subset index must hold integer positions, but got dtype {index.dtype}.")
        index = index.long()
        return PairSet(input=self.input[index], target=self.target[index], classes=self.classes[index])


@dataclass(frozen=True)
class Draw:
    """One seeded draw: the training pairs (folds are cut from them) and the held-out test pairs."""

    seed: int
    train: PairSet
    test: PairSet


def make_draw(pools: DigitPools, *, seed: int, n_pairs: int = DEFAULT_N_PAIRS) -> Draw:
    """Draw `n_pairs` training and `n_pairs` test pairs; the same seed gives the same tensors."""
    _check_seed(seed, n_pairs)
    _check_size(pools, n_pairs, (("training", pools.train), ("test", pools.test)))
    return Draw(
        seed=int(seed),
        train=_pairs(pools.train, n_pairs, _generator(int(seed), _TRAIN_STREAM)),
        test=_pairs(pools.test, n_pairs, _generator(int(seed), _TEST_STREAM)),
    )


def draw_training_pairs(pools: DigitPools, *, seed: int, n_pairs: int = DEFAULT_N_PAIRS) -> PairSet:
    """The training pairs of `make_draw(pools, seed=seed, n_pairs=n_pairs)`, without touching the test pool:
    what model selection may see."""
    _check_seed(seed, n_pairs)
    _check_size(pools, n_pairs, (("training", pools.train),))
    return _pairs(pools.train, n_pairs, _generator(int(seed), _TRAIN_STREAM))


def _check_seed(seed: int, n_pairs: int) -> None:
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise DataError(f"seed must be a non-negative integer, but got {seed=!r}.")
    if n_pairs < 1:
        raise DataError(f"n_pairs must be at least 1, but got {n_pairs=}.")


def _check_size(pools: DigitPools, n_pairs: int, named: tuple[tuple[str, Digits], ...]) -> None:
    limit = min(len(pools.train), len(pools.test)) // 2
    for name, digits in named:
        if 2 * n_pairs > len(digits):
            raise DataError(
                f"n_pairs={n_pairs} needs {2 * n_pairs} distinct digits but the {name} pool has {len(digits)}; "
                f"use n_pairs <= {limit}"
            )


def _generator(seed: int, stream: int) -> torch.Generator:
    """A private generator per (seed, stream); SeedSequence keeps the streams of nearby seeds unrelated."""
    state = np.random.SeedSequence(seed, spawn_key=(stream,)).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(state))


def _pairs(digits: Digits, n_pairs: int, generator: torch.Generator) -> PairSet:
    chosen = torch.randperm(len(digits), generator=generator)[: 2 * n_pairs].view(n_pairs, 2)  # 2N distinct digits
    classes = digits.labels[chosen]  # (N, 2)
    return PairSet(
        input=digits.images[chosen],  # (N, 2) indices -> (N, 2, 14, 14)
        target=(classes[:, 0] <= classes[:, 1]).long(),
        classes=classes,
    )


@dataclass(frozen=True)
class Normalisation:
    """Scalar mean/std of training inputs, as the course normalises; applied unchanged to eval/test pairs."""

    mean: float
    std: float

    @classmethod
    def fit(cls, pairs: PairSet) -> Normalisation:
        """Statistics of `pairs` alone: fit on the training fold so held-out pairs never leak into them."""
        if len(pairs) == 0:
            raise DataError("cannot fit a normalisation on an empty pair set.")
        values = pairs.input.double()
        mean, std = values.mean().item(), values.std().item()
        if not std > 0:
            raise DataError(f"cannot normalise: the training inputs have std={std} (all pixels equal).")
        return cls(mean=mean, std=std)

    @property
    def fill(self) -> float:
        """A blank (0) pixel after normalisation: what augmentation fills uncovered borders with."""
        return (0.0 - self.mean) / self.std

    def apply(self, pairs: PairSet) -> PairSet:
        """A new PairSet with inputs (x - mean) / std; target and classes are shared, not copied."""
        return PairSet(input=(pairs.input - self.mean) / self.std, target=pairs.target, classes=pairs.classes)


@dataclass(frozen=True, eq=False)
class PixelNormalisation:
    """Each pixel position's own mean/std over the training inputs (per feature, as sklearn's
    StandardScaler), applied unchanged to eval/test pairs. A pixel that is constant over the training
    inputs (a corner no training digit inks) carries nothing to learn from and has no scale: it is set
    to 0 in every set, so that ink there in a test digit cannot become an unbounded input."""

    mean: torch.Tensor  # (2, 14, 14)
    scale: torch.Tensor  # (2, 14, 14): 1/std, 0 where the training pixel is constant

    @classmethod
    def fit(cls, pairs: PairSet) -> PixelNormalisation:
        if len(pairs) < 2:
            raise DataError(f"cannot fit a per-pixel normalisation on {len(pairs)} pair(s): it needs at least 2.")
        values = pairs.input.double()
        mean, std = values.mean(0), values.std(0)
        if not bool((std > 0).any()):
            raise DataError("cannot normalise: every pixel of the training inputs is constant.")
        scale = torch.where(std > 0, 1.0 / std, torch.zeros_like(std))
        return cls(mean=mean.float(), scale=scale.float())

    @property
    def fill(self) -> None:
        """No single blank value exists (each pixel has its own): augmentation is refused with this normalisation."""
        return None

    def apply(self, pairs: PairSet) -> PairSet:
        """A new PairSet with inputs (x - mean) * scale; target and classes are shared, not copied."""
        return PairSet(input=(pairs.input - self.mean) * self.scale, target=pairs.target, classes=pairs.classes)


@dataclass(frozen=True)
class RawPixels:
    """No normalisation: the pixels as the course's pair generator gives them (0..255), which is what a
    report that states none may have trained on. The statistics are nobody's, so nothing is fitted."""

    fill = 0.0  # a blank pixel stays 0

    @classmethod
    def fit(cls, pairs: PairSet) -> RawPixels:
        if len(pairs) == 0:
            raise DataError("cannot train on an empty pair set.")
        return cls()

    def apply(self, pairs: PairSet) -> PairSet:
        return pairs


NORMALISATIONS: dict[str, type[Normalisation] | type[PixelNormalisation] | type[RawPixels]] = {
    "scalar": Normalisation,
    "pixel": PixelNormalisation,
    "none": RawPixels,
}
