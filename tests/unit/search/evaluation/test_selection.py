"""The selection stage (search.evaluation.selection): finalists retrained on repeated K-fold, stored in the study."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
import torch
from evaluation_helpers import add_trials

from models.data.draws import draw_training_pairs
from models.data.pools import load_pools
from search.evaluation.evaluate import evaluate_best
from search.evaluation.ranking import FinalistScore, stored_selection
from search.evaluation.selection import SELECTION_SEED_BASE, behind_the_leader, select_finalists, train_repeat
from search.reporting.tables import selection_table
from search.run.folds import split_folds
from search.storage.studies import best_trials

torch.set_num_threads(1)

N_PAIRS = 300  # 4 folds of 225 / 75 pairs: a tiny net learns to ~66 % in 4 epochs of batch 20 at lr 0.05

# Trial 0 is a lucky search result (the best search value) whose configuration cannot learn (lr 1e-6):
# the selection stage, which retrains every finalist on fresh training draws, must rank it last.
TRIALS = [
    {"lr": 1e-6, "value": 0.95, "epochs": 4, "batch_size": 20},
    {"lr": 0.05, "value": 0.80, "epochs": 4, "batch_size": 20},
    {"lr": 0.02, "value": 0.70, "epochs": 4, "batch_size": 20},
]


def test_finalists_are_ranked_by_repeated_kfold_and_stored_in_the_study(sqlite_url):
    study = add_trials(sqlite_url, "tiny", TRIALS)
    ranked = best_trials(sqlite_url, "tiny", top=3)
    assert [t.number for t in ranked] == [0, 1, 2]  # the search's order

    selection = select_finalists(study, ranked, repeats=2, race=False, epochs=None, n_pairs=N_PAIRS)

    assert selection.n_trained == 6 and selection.draw_seeds == (SELECTION_SEED_BASE, SELECTION_SEED_BASE + 1)
    assert sorted(f.trial_number for f in selection.finalists) == [0, 1, 2]
    assert all(len(f.fold_accuracies) == 2 * 4 for f in selection.finalists)  # 2 repeats x 4 folds (the default)
    means = [f.mean for f in selection.finalists]
    assert means == sorted(means, reverse=True)
    assert selection.chosen.trial_number != 0 and selection.finalists[-1].trial_number == 0
    assert selection.chosen.mean > selection.finalists[-1].mean + 0.05

    stored = optuna.load_study(study_name="tiny", storage=sqlite_url)
    assert stored.user_attrs["selection"]["chosen_trial"] == selection.chosen.trial_number
    assert "no test pair used" in stored.user_attrs["selection"]["method"]
    again = stored_selection(stored)
    assert again is not None and [f.trial_number for f in again.finalists] == [
        f.trial_number for f in selection.finalists
    ]
    assert [f.fold_accuracies for f in again.finalists] == [f.fold_accuracies for f in selection.finalists]
    table = selection_table(again)
    assert table.rows[0][0] == f"trial {selection.chosen.trial_number} (chosen)" and len(table.rows) == 3


def _finalist(number: int, folds: list[float | None]) -> FinalistScore:
    return FinalistScore(trial_number=number, search_value=0.9, fold_accuracies=tuple(folds))


def test_racing_drops_a_clearly_worse_finalist_but_not_a_tie():
    leader = _finalist(1, [0.99, 0.98, 0.99, 0.97])
    tie = _finalist(2, [0.98, 0.99, 0.98, 0.98])  # as good on average, ahead on one fold
    worse = _finalist(3, [0.95, 0.94, 0.96, 0.93])  # behind on every fold by 3-4 points
    exact_tie = _finalist(4, [0.99, 0.98, 0.99, 0.97])
    assert behind_the_leader([leader, tie, worse, exact_tie]) == {3}
    assert behind_the_leader([worse, leader]) == {3}  # the order given does not matter


def test_racing_never_drops_the_leader():
    diverged = _finalist(5, [None, 0.99, 0.99, 0.99])  # higher on three folds, but a diverged fold: not the leader
    steady = _finalist(6, [0.97, 0.97, 0.97, 0.97])
    assert behind_the_leader([diverged, steady]) == set()  # the leader stays; one fold of chance is no proof
    assert behind_the_leader([steady]) == set()
    ladder = [_finalist(n, [0.9 + 0.01 * n] * 4) for n in range(5)]  # each behind the next on every fold
    assert behind_the_leader(ladder) == {0, 1, 2, 3}


def test_the_race_stops_a_finalist_that_cannot_learn_after_one_repeat(sqlite_url):
    study = add_trials(sqlite_url, "tiny", TRIALS)
    ranked = best_trials(sqlite_url, "tiny", top=3)

    selection = select_finalists(study, ranked, repeats=3, epochs=None, n_pairs=N_PAIRS)

    by_trial = {f.trial_number: f for f in selection.finalists}
    assert by_trial[0].dropped_after == 1 and len(by_trial[0].fold_accuracies) == 4
    assert selection.finalists[-1].trial_number == 0 and selection.chosen.dropped_after is None
    assert selection.raced and selection.n_trained + selection.n_runs_saved == 3 * 3
    assert selection.n_runs_saved >= 2  # trial 0's second and third repeats
    survivors = [f for f in selection.finalists if f.dropped_after is None]
    assert all(len(f.fold_accuracies) >= 2 * 4 for f in survivors)  # the floor: two repeats at least
    stored = stored_selection(optuna.load_study(study_name="tiny", storage=sqlite_url))
    assert (
        stored is not None
        and stored.raced
        and {f.trial_number: f.dropped_after for f in stored.finalists}
        == {f.trial_number: f.dropped_after for f in selection.finalists}
    )
    again = select_finalists(study, ranked, repeats=3, epochs=None, n_pairs=N_PAIRS)  # decided from the stored runs
    assert again.n_trained == 0 and [f.trial_number for f in again.finalists] == [
        f.trial_number for f in selection.finalists
    ]


@pytest.mark.e2e  # starts worker processes
def test_a_rerun_trains_only_the_missing_repeats(sqlite_url):
    study = add_trials(sqlite_url, "tiny", TRIALS[1:])
    ranked = best_trials(sqlite_url, "tiny", top=2)
    first = select_finalists(study, ranked, repeats=1, epochs=None, n_pairs=N_PAIRS)

    again = select_finalists(study, ranked, repeats=1, epochs=None, n_pairs=N_PAIRS)
    more = select_finalists(study, ranked, repeats=2, epochs=None, n_pairs=N_PAIRS, workers=2, threads=1)
    longer = select_finalists(study, ranked, repeats=1, epochs=5, n_pairs=N_PAIRS)
    fewer_pairs = select_finalists(study, ranked, repeats=1, epochs=None, n_pairs=200)

    assert (first.n_trained, again.n_trained, more.n_trained, longer.n_trained, fewer_pairs.n_trained) == (
        2,
        0,
        2,
        2,
        2,
    )
    assert [f.fold_accuracies for f in again.finalists] == [f.fold_accuracies for f in first.finalists]
    by_trial = {f.trial_number: f.fold_accuracies for f in more.finalists}
    assert all(by_trial[f.trial_number][:4] == f.fold_accuracies for f in first.finalists)  # repeat 0 kept
    assert longer.epochs == 5 and "retrained at 5 epochs" in longer.method


def test_a_repeat_sees_training_pairs_only_and_is_deterministic():
    seed = SELECTION_SEED_BASE
    net, train = _tiny()
    folds = split_folds(N_PAIRS, n_folds=3, seed=seed)
    first = train_repeat(net=net, train=train, seed=seed, n_pairs=N_PAIRS, folds=folds, data_dir=None, threads=1)
    second = train_repeat(net=net, train=train, seed=seed, n_pairs=N_PAIRS, folds=folds, data_dir=None, threads=1)
    assert first == second and len(first) == 3 and all(0.4 <= a <= 1.0 for a in first)
    pairs = draw_training_pairs(load_pools(), seed=seed, n_pairs=N_PAIRS)
    assert len(pairs) == N_PAIRS  # the repeat's pairs: the training pool's, drawn like a draw's training pairs


def test_evaluate_best_evaluates_the_selection_stages_choice(sqlite_url):
    add_trials(sqlite_url, "tiny", TRIALS)

    summary = evaluate_best("tiny", storage_url=sqlite_url, draws=2, n_pairs=N_PAIRS, finalists=3, repeats=1, workers=1)

    assert summary.selection is not None
    (result,) = summary.configurations
    assert result.candidate.trial_number == summary.selection.chosen.trial_number != 0
    assert summary.to_dict()["selection"]["chosen_trial"] == result.candidate.trial_number
    plain = evaluate_best("tiny", storage_url=sqlite_url, draws=2, n_pairs=N_PAIRS, selection_stage=False, workers=1)
    assert plain.selection is None and plain.configurations[0].candidate.trial_number == 0  # the search's best


def test_a_two_objective_study_is_evaluated_in_the_searchs_order(sqlite_url):
    add_trials(sqlite_url, "tiny", [{"lr": 0.1, "values": [0.8, 1000.0]}], directions=("maximize", "minimize"))
    summary = evaluate_best("tiny", storage_url=sqlite_url, draws=1, n_pairs=N_PAIRS, workers=1)
    assert summary.selection is None and len(summary.configurations) == 1


def _tiny():
    from evaluation_helpers import tiny_configs

    return tiny_configs(lr=0.05, epochs=2, batch_size=20)


@pytest.fixture(autouse=True)
def _quiet_optuna():
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_the_selection_stage_and_evaluation_read_idx_digits(sqlite_url, tmp_path, write_idx):
    """--data-dir: the stage draws its training pairs from the IDX training pool, the evaluation its
    test pairs from the IDX test pool. The synthetic digits are learnable (a class-placed bar plus noise),
    so the configuration that cannot learn must still rank last."""
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 1200), ("t10k", 1200)):
        labels = np.arange(n) % 10
        images = rng.integers(0, 60, (n, 28, 28))
        for index, label in enumerate(labels):
            images[index, 4:24, 2 + 2 * label : 6 + 2 * label] = 255
        write_idx(tmp_path / "mnist" / f"{prefix}-images-idx3-ubyte", images)
        write_idx(tmp_path / "mnist" / f"{prefix}-labels-idx1-ubyte", labels)

    add_trials(sqlite_url, "tiny", TRIALS)
    summary = evaluate_best(
        "tiny",
        storage_url=sqlite_url,
        draws=2,
        n_pairs=N_PAIRS,
        finalists=3,
        repeats=1,
        data_dir=tmp_path / "mnist",
        workers=1,
    )

    assert summary.data_source == f"idx:{tmp_path / 'mnist'}"
    assert summary.selection is not None and summary.selection.finalists[-1].trial_number == 0
    (result,) = summary.configurations
    assert result.candidate.trial_number == summary.selection.chosen.trial_number
    assert result.accuracy.mean > 0.7  # well above chance on learnable digits
