"""The two handles Optuna keeps private that a run needs: a study's storage and a trial's storage id.

A run's counters, its leases and its recovery of a dead worker's trial address that trial by its storage
id, the key every `BaseStorage` method takes, and Optuna's public API gives neither the id of a running
trial nor a loaded study's storage. This module is the one place that reads them, so an Optuna release
that renames them breaks here, where `tests/unit/search/storage/test_handles.py` notices, and nowhere else.
"""

from __future__ import annotations

import optuna
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial

__all__ = ["storage_of", "trial_id"]


def storage_of(study: optuna.Study) -> BaseStorage:
    """The storage a loaded study reads and writes."""
    return study._storage


def trial_id(trial: optuna.Trial | FrozenTrial) -> int:
    """A trial's id in its storage (not its number, which counts within the study)."""
    return trial._trial_id
