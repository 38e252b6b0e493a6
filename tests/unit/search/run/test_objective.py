"""search/run/objective.py: the K-fold objective on the real smoke data (one thread, 2 folds, 200 pairs)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import optuna
import pytest
import torch

from models.data.draws import make_draw
from models.data.pools import load_pools
from search.run.objective import Objective, TrialInterrupted
from search.run.study_data import load_study_data
from search.study.loader import StudyDefinition, load_definition
from search.study.record import TrialRecord

TINY = """
name = "{name}"
[search]
n_folds = 2
epochs = {epochs}
n_pairs = 200
directions = {directions}
[fixed]
family = "mlp"
n_hidden = 1
hidden_width = 16
batch_size = 50
lr = {lr}
[params.optimizer]
type = "categorical"
choices = ["sgd"]
"""


@pytest.fixture(autouse=True)
def one_thread() -> None:
    torch.set_num_threads(1)


def tiny_definition(
    tmp_path: Path, *, name: str = "tiny", epochs: int = 1, lr: float = 0.05, directions: str = '["maximize"]'
) -> StudyDefinition:
    path = tmp_path / f"{name}.toml"
    path.write_text(TINY.format(name=name, epochs=epochs, lr=lr, directions=directions))
    return load_definition(str(path))


def run_one(objective: Objective, **study_kwargs: object) -> optuna.trial.FrozenTrial:
    study = optuna.create_study(**study_kwargs)
    study.optimize(objective, n_trials=1, catch=(TrialInterrupted,))
    return study.trials[0]


def test_a_smoke_trial_scores_and_records_its_user_attrs() -> None:
    definition = load_definition("smoke")
    trial = run_one(Objective(definition), direction="maximize")
    assert trial.state == optuna.trial.TrialState.COMPLETE
    assert 0.0 <= trial.value <= 1.0
    record = TrialRecord.from_trial(trial)
    assert record.fold_accuracies is not None and len(record.fold_accuracies) == definition.n_folds
    assert trial.value == pytest.approx(np.mean(record.fold_accuracies))
    assert record.fold_std == pytest.approx(np.std(record.fold_accuracies))
    assert 0.0 <= record.digit_accuracy <= 1.0  # the smoke net is siamese: it predicts digits
    assert record.n_params > 0 and record.train_seconds > 0
    net, train = record.configs()
    assert net.family == "siamese" and train.epochs == definition.epochs
    assert sorted(trial.intermediate_values) == list(range(definition.epochs))  # one report per epoch
    assert record.worker_pid == os.getpid() and record.worker_rss_mib > 0 and record.failure_reason is None
    assert 0 < record.worker_rss_start_mib <= record.worker_rss_mib  # resident at the start <= peak so far
    assert 0 <= record.report_seconds <= record.train_seconds


def test_training_pairs_are_the_draws_training_pairs_and_folds_are_stable(tmp_path: Path) -> None:
    definition = tiny_definition(tmp_path)
    first, second = load_study_data(definition), load_study_data(definition)
    pairs = first.pairs
    expected = make_draw(load_pools(None), seed=definition.data_seed, n_pairs=definition.n_pairs).train
    assert torch.equal(pairs.input, expected.input) and torch.equal(pairs.target, expected.target)
    folds = first.folds
    assert len(folds) == definition.n_folds
    for (fit_a, val_a), (fit_b, val_b) in zip(folds, second.folds, strict=True):
        assert np.array_equal(fit_a, fit_b) and np.array_equal(val_a, val_b)
    assert sorted(np.concatenate([val for _, val in folds]).tolist()) == list(range(definition.n_pairs))
    assert first.identity == second.identity and first.identity["data_source"] == "embedded"
    handed = Objective(definition, data=first)  # what a worker gets from its parent
    assert handed.data is first and Objective(definition).data.folds[0][1].tolist() == folds[0][1].tolist()


def test_a_trial_the_pruner_rejects_ends_pruned(tmp_path: Path) -> None:
    definition = tiny_definition(tmp_path, epochs=3)
    trial = run_one(Objective(definition), direction="maximize", pruner=optuna.pruners.ThresholdPruner(lower=1.01))
    assert trial.state == optuna.trial.TrialState.PRUNED
    assert list(trial.intermediate_values) == [0]  # stopped after the first epoch


def test_a_diverging_trial_is_pruned_with_its_reason(tmp_path: Path) -> None:
    definition = tiny_definition(tmp_path, lr=1e30)
    trial = run_one(Objective(definition), direction="maximize")
    assert trial.state == optuna.trial.TrialState.PRUNED
    assert TrialRecord.from_trial(trial).failure_reason.startswith("diverged: fold ")


def test_two_objectives_return_accuracy_and_parameter_count(tmp_path: Path) -> None:
    definition = tiny_definition(tmp_path, directions='["maximize", "minimize"]')
    trial = run_one(Objective(definition), directions=["maximize", "minimize"])
    accuracy, n_params = trial.values
    assert 0.0 <= accuracy <= 1.0
    assert n_params == TrialRecord.from_trial(trial).n_params > 0
    assert trial.intermediate_values == {}  # multi-objective trials cannot be pruned: nothing reported


def test_a_stop_request_fails_the_trial_as_interrupted(tmp_path: Path) -> None:
    definition = tiny_definition(tmp_path, epochs=3)
    trial = run_one(Objective(definition, should_stop=lambda: True), direction="maximize")
    assert trial.state == optuna.trial.TrialState.FAIL
    assert TrialRecord.from_trial(trial).failure_reason.startswith("interrupted")


def _screening_definition(
    tmp_path: Path, screen_folds: int | None, *, scored_folds: int | None = None
) -> StudyDefinition:
    path = tmp_path / "screen.toml"
    text = TINY.format(name="screen", epochs=3, lr=0.05, directions='["maximize"]').replace(
        "n_folds = 2", "n_folds = 4"
    )
    if screen_folds is not None:
        text = text.replace("[search]\n", f"[search]\nscreen_folds = {screen_folds}\n")
    if scored_folds is not None:
        text = text.replace("[search]\n", f"[search]\nscored_folds = {scored_folds}\n")
    path.write_text(text)
    return load_definition(str(path))


class _PruneAt(optuna.pruners.BasePruner):
    """Prunes every trial at one epoch: what a successive-halving rung does to the trials behind."""

    def __init__(self, step: int) -> None:
        self.step = step

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        return trial.last_step == self.step


def test_screening_reports_the_first_fold_and_finishes_with_the_mean_of_all(tmp_path: Path) -> None:
    every = run_one(Objective(_screening_definition(tmp_path, None)), direction="maximize")
    screened = run_one(Objective(_screening_definition(tmp_path, 1)), direction="maximize")

    assert screened.state == every.state == optuna.trial.TrialState.COMPLETE
    folds = TrialRecord.from_trial(screened).fold_accuracies
    assert len(folds) == 4 and screened.value == pytest.approx(np.mean(folds))  # all four folds, trained last
    assert folds == pytest.approx(TrialRecord.from_trial(every).fold_accuracies, abs=0.05)  # the same fold models
    assert screened.intermediate_values[2] != pytest.approx(every.intermediate_values[2])  # one fold, not the mean


def test_a_trial_pruned_while_screening_trains_no_other_fold(tmp_path: Path) -> None:
    trial = run_one(Objective(_screening_definition(tmp_path, 1)), direction="maximize", pruner=_PruneAt(1))

    assert trial.state == optuna.trial.TrialState.PRUNED
    assert len(TrialRecord.from_trial(trial).fold_accuracies) == 1 and sorted(trial.intermediate_values) == [0, 1]


def test_screen_folds_must_leave_folds_to_train_later(tmp_path: Path) -> None:
    from search.errors import DefinitionError

    with pytest.raises(DefinitionError, match="screen_folds=4 must be below n_folds=4"):
        _screening_definition(tmp_path, 4)
    with pytest.raises(DefinitionError, match=r"screen_folds must be an integer >= 1, but got 0"):
        _screening_definition(tmp_path, 0)


def test_scored_folds_train_and_score_the_first_folds_of_the_k_fold_split(tmp_path: Path) -> None:
    every = run_one(Objective(_screening_definition(tmp_path, None)), direction="maximize")
    scored = run_one(Objective(_screening_definition(tmp_path, None, scored_folds=2)), direction="maximize")

    folds = TrialRecord.from_trial(scored).fold_accuracies
    assert len(folds) == 2 and scored.value == pytest.approx(np.mean(folds))
    # The same first two fold models as the four-fold trial's: same 150/50 split of the 200 pairs, same seeds.
    assert folds == pytest.approx(TrialRecord.from_trial(every).fold_accuracies[:2], abs=0.05)


def test_scored_folds_screen_within_the_scored_folds(tmp_path: Path) -> None:
    trial = run_one(
        Objective(_screening_definition(tmp_path, 1, scored_folds=2)), direction="maximize", pruner=_PruneAt(99)
    )
    assert trial.state == optuna.trial.TrialState.COMPLETE
    assert len(TrialRecord.from_trial(trial).fold_accuracies) == 2


def test_scored_folds_must_fit_the_k_folds_and_leave_room_to_screen(tmp_path: Path) -> None:
    from search.errors import DefinitionError

    with pytest.raises(DefinitionError, match="scored_folds=5 must be at most n_folds=4"):
        _screening_definition(tmp_path, None, scored_folds=5)
    with pytest.raises(DefinitionError, match="screen_folds=2 must be below scored_folds=2"):
        _screening_definition(tmp_path, 2, scored_folds=2)
    with pytest.raises(DefinitionError, match=r"scored_folds must be an integer >= 1, but got 0"):
        _screening_definition(tmp_path, None, scored_folds=0)


def test_fewer_folds_on_the_command_line_score_them_all(tmp_path: Path) -> None:
    from search.study.loader import with_overrides

    definition = _screening_definition(tmp_path, 1, scored_folds=3)
    assert (with_overrides(definition, n_folds=3).scored_folds, with_overrides(definition, n_folds=3).screen_folds) == (
        None,
        1,
    )
    assert with_overrides(definition, n_folds=5).search_folds == 3
    assert with_overrides(definition, n_folds=2).search_folds == 2
    assert definition.fingerprint() != _screening_definition(tmp_path, 1).fingerprint()
