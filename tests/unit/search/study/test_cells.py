"""search/study/cells.py: one rule for "which cell is this trial in", with types strict (True is not 1)."""

from __future__ import annotations

import optuna
from optuna.distributions import CategoricalDistribution, IntDistribution

from search.study.cells import cell_index, cell_label, cell_of, in_cell, same_cell, same_value
from search.study.record import TrialRecord

CELLS = (
    {"weight_sharing": False, "n_conv": 1},
    {"weight_sharing": True, "n_conv": 1},
    {"weight_sharing": True, "n_conv": 2},
)


def _trial(params: dict, *, config: dict | None = None) -> optuna.trial.FrozenTrial:
    distributions = {
        name: CategoricalDistribution([True, False, 0, 1]) if name == "weight_sharing" else IntDistribution(0, 3)
        for name in params
    }
    attrs = TrialRecord(net_config=config or {}, train_config={}).to_user_attrs()
    return optuna.trial.create_trial(params=params, distributions=distributions, user_attrs=attrs, value=0.5)


def test_a_value_matches_only_its_own_type() -> None:
    assert same_value(True, True) and same_value(1, 1) and same_value(0.5, 0.5)
    assert not same_value(True, 1) and not same_value(1, True) and not same_value(1, 1.0) and not same_value(False, 0)


def test_a_trial_is_in_the_cell_whose_values_it_has() -> None:
    assert cell_index(CELLS, {"weight_sharing": True, "n_conv": 2, "lr": 0.1}) == 2
    assert cell_of(_trial({"weight_sharing": True, "n_conv": 1}), CELLS) == CELLS[1]
    assert in_cell(_trial({"weight_sharing": False, "n_conv": 1}), CELLS[0])


def test_the_integer_1_is_in_no_cell_of_true() -> None:
    """Python's True == 1 would put a trial with weight_sharing=1 in the cells of weight_sharing = true."""
    trial = _trial({"weight_sharing": 1, "n_conv": 1})
    assert cell_of(trial, CELLS) is None and not in_cell(trial, CELLS[1])
    assert cell_index(CELLS, {"weight_sharing": True, "n_conv": True}) is None  # nor True in a cell of n_conv = 1


def test_a_fixed_value_is_read_from_the_trials_configuration() -> None:
    trial = _trial({"n_conv": 2}, config={"weight_sharing": True})
    assert cell_of(trial, CELLS) == CELLS[2]
    assert cell_of(_trial({"n_conv": 2}), CELLS) is None  # neither a param nor a stored configuration


def test_same_cell_and_labels() -> None:
    assert same_cell({"weight_sharing": True, "n_conv": 1}, CELLS[1])
    assert not same_cell({"weight_sharing": 1, "n_conv": 1}, CELLS[1])
    assert not same_cell({"weight_sharing": True}, CELLS[1]) and not same_cell(None, CELLS[1])
    assert cell_label(CELLS[2]) == "weight_sharing=True, n_conv=2"
