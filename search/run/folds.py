"""K-fold cross-validation as the search, the selection stage and the benchmarks run it: the folds, the
seed of each fold's model, and the score of a fold whose model diverged.

The folds are scikit-learn's shuffled `KFold` seeded with the draw's seed, and each fold's model gets
the seed `seed * 1000 + fold`; both are fixed for every configuration, so configurations are compared on
the same folds with the same initialisations. Changing either changes every stored study's results.
"""

from __future__ import annotations

import numpy as np

__all__ = ["DIVERGED_SCORE", "fold_score", "fold_seeds", "split_folds"]

DIVERGED_SCORE = 0.5  # a diverged fold counts as chance, so a configuration that diverges never wins


def split_folds(n_pairs: int, *, n_folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(fit, validation) positions in `n_pairs` training pairs: `KFold(n_folds, shuffle=True, random_state=seed)`.

    scikit-learn is imported here, not at the top: a worker takes its folds from its parent and never
    imports it (with the scipy and pandas it pulls in, ~110 MiB of each worker's memory).
    """
    from sklearn.model_selection import KFold

    return list(KFold(n_splits=n_folds, shuffle=True, random_state=seed).split(np.arange(n_pairs)))


def fold_seeds(seed: int, n_folds: int) -> list[int]:
    """The seed of each fold's model, the same for every configuration trained on these folds."""
    return [seed * 1000 + fold for fold in range(n_folds)]


def fold_score(accuracy: float | None) -> float:
    """A fold's score: its validation accuracy, or DIVERGED_SCORE where its model diverged (None)."""
    return DIVERGED_SCORE if accuracy is None else accuracy
