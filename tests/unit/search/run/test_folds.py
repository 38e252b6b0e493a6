"""search/run/folds.py: the one K-fold split, fold seeds and diverged-fold score of the search, the selection
stage and the benchmarks, pinned to what each of them computed on its own before."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.model_selection import KFold

from search.run.folds import DIVERGED_SCORE, fold_score, fold_seeds, split_folds


@pytest.mark.parametrize(("n_pairs", "n_folds", "seed"), [(200, 2, 0), (1000, 4, 7), (1000, 5, 500_000), (37, 3, 42)])
def test_the_folds_are_those_kfold_gave_the_search_and_the_selection_stage(
    n_pairs: int, n_folds: int, seed: int
) -> None:
    """The objective split np.arange(len(pairs)) with KFold(n_folds, shuffle=True, random_state=data_seed), the
    selection stage with random_state = its draw seed: every stored study's results rest on these indices."""
    expected = list(KFold(n_splits=n_folds, shuffle=True, random_state=seed).split(np.arange(n_pairs)))
    folds = split_folds(n_pairs, n_folds=n_folds, seed=seed)
    assert len(folds) == len(expected) == n_folds
    for (fit, validation), (fit_expected, validation_expected) in zip(folds, expected, strict=True):
        assert fit.dtype == fit_expected.dtype and validation.dtype == validation_expected.dtype
        assert np.array_equal(fit, fit_expected) and np.array_equal(validation, validation_expected)
    assert sorted(np.concatenate([validation for _, validation in folds]).tolist()) == list(range(n_pairs))


def test_the_folds_of_two_seeds_written_out() -> None:
    """The indices themselves, so that a scikit-learn that shuffled otherwise would be caught, not followed."""
    assert [v.tolist() for _, v in split_folds(12, n_folds=3, seed=0)] == [[4, 6, 10, 11], [1, 2, 7, 8], [0, 3, 5, 9]]
    assert [v.tolist() for _, v in split_folds(12, n_folds=3, seed=500_000)] == [
        [0, 1, 2, 3],
        [4, 6, 7, 11],
        [5, 8, 9, 10],
    ]


def test_other_seeds_give_other_folds() -> None:
    first, other = split_folds(200, n_folds=2, seed=0), split_folds(200, n_folds=2, seed=1)
    assert not np.array_equal(first[0][1], other[0][1])


def test_the_fold_models_seeds_are_seed_times_1000_plus_the_fold() -> None:
    assert fold_seeds(0, 4) == [0, 1, 2, 3]
    assert fold_seeds(7, 3) == [7000, 7001, 7002]
    assert fold_seeds(500_000, 2) == [500_000_000, 500_000_001]
    assert not set(fold_seeds(0, 20)) & set(fold_seeds(1, 20))  # K is at most 20: runs never share a seed


def test_a_diverged_fold_scores_as_chance() -> None:
    assert DIVERGED_SCORE == 0.5
    assert fold_score(None) == 0.5 and fold_score(0.93) == 0.93 and fold_score(0.0) == 0.0
