"""The data every trial of a study shares, loaded once per run: the study's training pairs, their folds,
and which digits they came from.

A run loads it before anything else (a bad --data-dir fails there, once), records its identity with the
study, and hands pairs and folds to its workers, so that workers never read the digits or import
scikit-learn (with the scipy and pandas it pulls in, ~110 MiB of each worker's memory).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.data.draws import PairSet, make_draw
from models.data.pools import DigitPools, load_pools
from search.run.folds import split_folds
from search.study.definition import StudyDefinition

__all__ = ["StudyData", "data_identity", "load_study_data"]


@dataclass(frozen=True)
class StudyData:
    pairs: PairSet  # the training pairs of the study's draw (data_seed, n_pairs): never its test pairs
    folds: tuple[tuple[np.ndarray, np.ndarray], ...]  # (fit, validation) positions in `pairs`
    identity: dict[str, str]  # data_source ("embedded" or "idx:<dir>") and data_sha256 of the training pool


def load_study_data(definition: StudyDefinition, data_dir: Path | None = None) -> StudyData:
    """The definition's training pairs and folds. Folds follow data_seed, not seed: they are part of the
    data every trial shares (the fingerprint covers data_seed; a new seed only adds samples to a study)."""
    pools = load_pools(data_dir)
    pairs = make_draw(pools, seed=definition.data_seed, n_pairs=definition.n_pairs).train
    folds = split_folds(len(pairs), n_folds=definition.n_folds, seed=definition.data_seed)
    return StudyData(pairs=pairs, folds=tuple(folds), identity=data_identity(pools))


def data_identity(pools: DigitPools) -> dict[str, str]:
    """Where the digits come from and a SHA-256 of the training pool's content: a study records both at
    creation, and a run on other digits is refused (search.run.runner)."""
    digest = hashlib.sha256()
    for tensor in (pools.train.images, pools.train.labels):
        digest.update(tensor.contiguous().numpy().tobytes())
    return {"data_source": pools.source, "data_sha256": digest.hexdigest()}
