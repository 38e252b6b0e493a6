"""The cells of an ablation ([[cells]]): which cell a trial is in, and how a cell is named.

One rule for the sampler (which cell's sampler proposes a trial), the evaluation (each cell's best
trial) and the report (the cell beside each evaluated trial): a trial is in a cell when each of the
cell's parameters has the cell's value, of the same type. The type matters: Python says `True == 1`,
but a cell `weight_sharing = true` must not take in a trial whose value is the integer 1, nor a cell
`n_conv = 1` one whose value is `True`. Definitions coerce cell values to their field's type
(`space.coerce`), and Optuna hands categorical values back as they were given, so values of the same
field always compare with the same type.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from optuna.trial import FrozenTrial

from search.study.record import TrialRecord, enqueued_params

__all__ = ["cell_index", "cell_label", "cell_of", "in_cell", "matches", "same_cell", "same_value", "trial_values"]


def same_value(a: Any, b: Any) -> bool:
    """Equal and of the same type (True is not 1, 1 is not 1.0)."""
    return type(a) is type(b) and a == b


def matches(cell: Mapping[str, Any], values: Mapping[str, Any]) -> bool:
    """Whether `values` give every parameter of `cell` the cell's value."""
    return all(key in values and same_value(values[key], value) for key, value in cell.items())


def cell_index(cells: Sequence[Mapping[str, Any]], values: Mapping[str, Any]) -> int | None:
    """The index of the cell `values` (parameter -> value) lie in, or None when they lie in none."""
    return next((index for index, cell in enumerate(cells) if matches(cell, values)), None)


def trial_values(trial: FrozenTrial) -> dict[str, Any]:
    """What a trial set: its configuration (stored by the objective), overridden by the parameters it was
    enqueued with and by its own parameters (the cell parameters are trial params)."""
    return {**TrialRecord.from_trial(trial).config_values(), **enqueued_params(trial), **trial.params}


def in_cell(trial: FrozenTrial, cell: Mapping[str, Any]) -> bool:
    """Whether the trial's parameters (or, for fixed ones, its configuration) have the cell's values."""
    return matches(cell, trial_values(trial))


def cell_of(trial: FrozenTrial, cells: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The cell the trial lies in, or None."""
    index = cell_index(cells, trial_values(trial))
    return None if index is None else dict(cells[index])


def same_cell(a: Mapping[str, Any] | None, b: Mapping[str, Any] | None) -> bool:
    """Whether two cells are the same: the same parameters with the same values (types included)."""
    return a is not None and b is not None and a.keys() == b.keys() and matches(a, b)


def cell_label(cell: Mapping[str, Any]) -> str:
    """A cell as tables and plots name it: "weight_sharing=True, aux_loss=alpha"."""
    return ", ".join(f"{key}={value}" for key, value in cell.items())
