import datetime
import json

import pytest
import sqlalchemy
import torch
from evaluation_helpers import N_PAIRS, OWN_ABLATION_TRIALS, add_trials, own_ablation, tiny_configs
from sqlalchemy import func, select

from models.errors import ConfigError
from search.errors import EvaluationError, StorageError
from search.evaluation.evaluate import DRAW_SEED_BASE, evaluate_best
from search.evaluation.results import config_key
from search.evaluation.store import EvaluationRow, load_evaluations, open_evaluations
from search.reporting.published import load_results
from search.reproduction.reproduce import reproduce
from search.study.loader import load_definition

torch.set_num_threads(1)

CELLS = [  # (weight_sharing, aux_loss) of the `ablation` definition's four cells
    (False, "none"),
    (True, "none"),
    (False, "alpha"),
    (True, "alpha"),
]


def _rows(url: str, **where) -> list[EvaluationRow]:
    with open_evaluations(url) as engine, sqlalchemy.orm.Session(engine) as session:
        query = select(EvaluationRow).filter_by(**where).order_by(EvaluationRow.id)
        rows = list(session.scalars(query))
        session.expunge_all()
    return rows


def test_rows_are_written_once_and_rerun_trains_only_missing_draws(storage_url):
    add_trials(storage_url, "tiny", [{"lr": 0.05, "value": 0.6}, {"lr": 0.1, "value": 0.7}])

    summary = evaluate_best("tiny", storage_url=storage_url, draws=3, n_pairs=N_PAIRS, selection_stage=False, workers=1)

    (result,) = summary.configurations
    assert result.candidate.trial_number == 1  # the best value (the search's ranking: no selection stage)
    assert summary.n_trained == 3 and summary.draw_seeds == (1000, 1001, 1002)
    assert sorted(result.accuracies) == [1000, 1001, 1002]
    assert all(0.3 <= a <= 1.0 for a in result.accuracies.values())
    assert result.accuracy.n == 3 and result.accuracy.ci_low <= result.accuracy.mean <= result.accuracy.ci_high
    rows = _rows(storage_url, study_name="tiny")
    assert [r.draw_seed for r in rows] == [1000, 1001, 1002]
    row = rows[0]
    assert (row.trial_number, row.preset, row.status, row.data_source, row.n_pairs, row.epochs) == (
        1,
        None,
        "completed",
        "embedded",
        N_PAIRS,
        1,
    )
    assert row.config_key == result.candidate.key and row.n_params == result.n_params > 0
    assert row.test_digit_accuracy is not None and row.train_seconds > 0
    assert (
        abs(
            row.created_at.replace(tzinfo=None) - datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
        ).total_seconds()
        < 600
    )

    again = evaluate_best("tiny", storage_url=storage_url, draws=3, n_pairs=N_PAIRS, selection_stage=False, workers=1)
    assert again.n_trained == 0 and len(_rows(storage_url)) == 3
    assert again.configurations[0].accuracies == result.accuracies

    more = evaluate_best("tiny", storage_url=storage_url, draws=5, n_pairs=N_PAIRS, selection_stage=False, workers=1)
    assert more.n_trained == 2 and len(_rows(storage_url)) == 5


def test_top_two_are_evaluated_on_the_same_draw_seeds(sqlite_url):
    add_trials(sqlite_url, "tiny", [{"lr": 0.05, "value": 0.8}, {"lr": 0.1, "value": 0.6}, {"lr": 0.2, "value": 0.7}])
    seen = []

    summary = evaluate_best(
        "tiny",
        storage_url=sqlite_url,
        top=2,
        draws=2,
        n_pairs=N_PAIRS,
        progress=lambda d, t: seen.append((d, t)),
        selection_stage=False,
        workers=1,
    )

    assert [r.candidate.trial_number for r in summary.configurations] == [0, 2]
    assert [sorted(r.accuracies) for r in summary.configurations] == [[1000, 1001], [1000, 1001]]
    for number in (0, 2):
        assert [r.draw_seed for r in _rows(sqlite_url, trial_number=number)] == [1000, 1001]
    assert seen[0] == (0, 4) and seen[-1] == (4, 4)
    assert summary.comparisons == ()  # only studies with cells get paired tests
    data = summary.to_dict()
    assert data["draws"] == 2 and [c["trial_number"] for c in data["configurations"]] == [0, 2]


def test_ablation_compares_the_best_trial_of_each_of_four_cells(sqlite_url):
    # Two trials per cell, as the CellSampler leaves them; the second of each cell is its best.
    trials = [
        {"weight_sharing": ws, "aux_loss": aux, "lr": lr, "value": 0.5 + 0.1 * k + (0.05 if lr > 0.05 else 0)}
        for lr in (0.05, 0.1)
        for k, (ws, aux) in enumerate(CELLS)
    ]
    add_trials(
        sqlite_url, "ablation", trials, definition=load_definition("ablation")
    )  # cells: weight_sharing x aux_loss

    summary = evaluate_best("ablation", storage_url=sqlite_url, draws=3, n_pairs=N_PAIRS, workers=1)

    labels = [r.candidate.label for r in summary.configurations]
    assert labels == [f"weight_sharing={ws}, aux_loss={aux}" for ws, aux in CELLS]
    assert [r.candidate.trial_number for r in summary.configurations] == [4, 5, 6, 7]
    assert [r.candidate.cell for r in summary.configurations] == [
        {"weight_sharing": ws, "aux_loss": aux} for ws, aux in CELLS
    ]
    assert len(summary.comparisons) == 6  # every pair of the four cells
    for comparison in summary.comparisons:
        assert comparison.tests.n == 3
        assert 0.0 <= comparison.tests.wilcoxon_pvalue <= 1.0
    assert (summary.comparisons[2].a, summary.comparisons[2].b) == (labels[0], labels[3])


def test_diverged_draws_are_kept_but_left_out_of_the_statistics(sqlite_url):
    add_trials(sqlite_url, "tiny", [{"lr": 0.05, "value": 0.6}])
    net, train = tiny_configs(lr=0.05)
    with open_evaluations(sqlite_url) as engine, engine.begin() as connection:
        connection.execute(
            sqlalchemy.insert(EvaluationRow),
            [
                {
                    "study_name": "tiny",
                    "trial_number": 0,
                    "config_key": config_key(net, train),
                    "config_json": json.dumps({"net": net.to_dict(), "train": train.to_dict()}),
                    "draw_seed": DRAW_SEED_BASE,
                    "n_pairs": N_PAIRS,
                    "data_source": "embedded",
                    "epochs": 1,
                    "status": "diverged",
                    "message": "loss is nan",
                    "test_accuracy": None,
                    "train_seconds": 0.1,
                    "n_params": 10,
                    "created_at": datetime.datetime.now(datetime.timezone.utc),
                }
            ],
        )  # fmt: skip (one row, several columns to a line)

    summary = evaluate_best("tiny", storage_url=sqlite_url, draws=2, n_pairs=N_PAIRS, workers=1)

    (result,) = summary.configurations
    assert summary.n_trained == 1  # the diverged draw is stored: not trained again
    assert result.n_diverged == 1 and sorted(result.accuracies) == [1001] and result.accuracy.n == 1


def test_the_unique_index_refuses_a_second_row_for_one_draw(storage_url):
    net, train = tiny_configs()
    row = {
        "study_name": "s",
        "preset": None,
        "config_key": config_key(net, train),
        "config_json": "{}",
        "draw_seed": 1000,
        "n_pairs": 100,
        "data_source": "embedded",
        "epochs": 1,
        "status": "completed",
        "test_accuracy": 0.9,
        "train_seconds": 1.0,
        "n_params": 10,
        "created_at": datetime.datetime.now(datetime.timezone.utc),
    }  # fmt: skip (one row, several columns to a line)
    with open_evaluations(storage_url) as engine:
        with engine.begin() as connection:
            connection.execute(sqlalchemy.insert(EvaluationRow), [row, {**row, "study_name": None, "preset": "s"}])
        for duplicate in (row, {**row, "study_name": None, "preset": "s"}):
            with pytest.raises(sqlalchemy.exc.IntegrityError), engine.begin() as connection:
                connection.execute(sqlalchemy.insert(EvaluationRow), [duplicate])
        with engine.connect() as connection:
            assert connection.scalar(select(func.count()).select_from(EvaluationRow)) == 2


def test_reproduce_two_presets_stores_rows_with_the_preset(sqlite_url):
    summary = reproduce(
        ["seed002/mlp", "seed003/fnn-ws-al"], storage_url=sqlite_url, draws=2, epochs=1, n_pairs=N_PAIRS, workers=1
    )

    assert [r.candidate.label for r in summary.configurations] == ["seed002/mlp", "seed003/fnn-ws-al"]
    assert [r.candidate.published_mean for r in summary.configurations] == [0.765, 0.9356]
    assert all(r.accuracy.n == 2 and 0.3 <= r.accuracy.mean <= 1.0 for r in summary.configurations)
    assert all(r.best_epoch_accuracy is None for r in summary.configurations)  # final-epoch figures only
    rows = _rows(sqlite_url)
    assert {(r.preset, r.study_name, r.trial_number, r.epochs) for r in rows} == {
        ("seed002/mlp", None, None, 1),
        ("seed003/fnn-ws-al", None, None, 1),
    }
    assert len(rows) == 4
    assert summary.to_dict()["configurations"][0]["difference"] == pytest.approx(
        summary.configurations[0].accuracy.mean - 0.765
    )
    assert (
        reproduce(["seed002/mlp"], storage_url=sqlite_url, draws=2, epochs=1, n_pairs=N_PAIRS, workers=1).n_trained == 0
    )


def test_reproduce_a_report_keeps_rows_of_one_configuration_apart_and_max_over_epochs(sqlite_url):
    # seed000's alpha-0.4 sweep row and its joint scheme are one configuration under two published figures
    same = reproduce(
        ["seed000/siamese-alpha0.4", "seed000/scheme3-joint"],
        storage_url=sqlite_url,
        draws=1,
        epochs=1,
        n_pairs=N_PAIRS,
        workers=1,
    )
    assert same.configurations[0].candidate.key == same.configurations[1].candidate.key
    # one draw, trained once and stored under both rows
    assert [r.accuracy.n for r in same.configurations] == [1, 1] and same.n_trained == 1
    assert same.configurations[0].accuracies == same.configurations[1].accuracies
    # a third row of the same network: the stored draw is copied to it, the new one trained once for all three
    three = reproduce(
        ["seed000/siamese-alpha0.4", "seed000/scheme3-joint", "seed000/siamese-depth3"],
        storage_url=sqlite_url,
        draws=2,
        epochs=1,
        n_pairs=N_PAIRS,
        workers=1,
    )
    assert three.n_trained == 1 and [r.accuracy.n for r in three.configurations] == [2, 2, 2]
    assert three.configurations[0].accuracies[DRAW_SEED_BASE] == same.configurations[0].accuracies[DRAW_SEED_BASE]
    assert len({tuple(sorted(r.accuracies.items())) for r in three.configurations}) == 1
    assert {r.preset for r in _rows(sqlite_url)} == {p.candidate.preset for p in three.configurations}
    assert len(_rows(sqlite_url)) == 6

    seen = []
    summary = reproduce(
        report="4",
        storage_url=sqlite_url,
        draws=2,
        epochs=2,
        n_pairs=N_PAIRS,
        on_configuration=lambda *a: seen.append(a),
        workers=1,
    )

    assert [r.candidate.preset for r in summary.configurations][:2] == ["seed004/deep-al-ws", "seed004/deep-ws"]
    assert len(summary.configurations) == 12 and [s[1:] for s in seen] == [(k, 12) for k in range(1, 13)]
    for result in summary.configurations:  # report 004's figure is the best epoch: kept beside the final one
        assert result.best_epoch_accuracy is not None and result.best_epoch_accuracy.n == 2
        for seed, final in result.accuracies.items():
            assert result.best_epoch_accuracies[seed] >= final
    stored = _rows(sqlite_url, preset="seed004/deep-ws")
    assert len(stored) == 2 and all(r.best_epoch_accuracy >= r.test_accuracy for r in stored)


def test_an_evaluations_table_of_an_earlier_version_gets_the_new_column(sqlite_url):
    engine = sqlalchemy.create_engine(sqlite_url)
    with engine.begin() as connection:  # the table as the previous release made it, with one row
        connection.execute(
            sqlalchemy.text(
                "CREATE TABLE evaluations (id INTEGER PRIMARY KEY, study_name VARCHAR(512), trial_number INTEGER, "
                "preset VARCHAR(128), config_key VARCHAR(64) NOT NULL, config_json TEXT NOT NULL, draw_seed INTEGER NOT NULL, "
                "n_pairs INTEGER NOT NULL, data_source VARCHAR(1024) NOT NULL, epochs INTEGER NOT NULL, status VARCHAR(16) NOT NULL, "
                "message TEXT, test_accuracy FLOAT, test_digit_accuracy FLOAT, train_seconds FLOAT NOT NULL, n_params INTEGER NOT NULL, "
                "created_at DATETIME NOT NULL)"
            )
        )
        connection.execute(
            sqlalchemy.text(
                "INSERT INTO evaluations (preset, config_key, config_json, draw_seed, n_pairs, data_source, epochs, status, "
                "test_accuracy, train_seconds, n_params, created_at) VALUES ('old', 'k', '{}', 1000, 100, 'embedded', 1, "
                "'completed', 0.9, 1.0, 10, '2026-11-01 00:00:00')"
            )
        )
    engine.dispose()

    (old,) = _rows(sqlite_url)

    assert old.preset == "old" and old.test_accuracy == 0.9 and old.best_epoch_accuracy is None


@pytest.mark.e2e  # starts worker processes
def test_workers_train_chunks_in_parallel_processes(sqlite_url):
    add_trials(sqlite_url, "tiny", [{"lr": 0.05, "value": 0.6}])

    summary = evaluate_best("tiny", storage_url=sqlite_url, draws=6, n_pairs=N_PAIRS, workers=2, threads=1)

    assert summary.n_trained == 6 and sorted(summary.configurations[0].accuracies) == list(range(1000, 1006))
    assert len(_rows(sqlite_url)) == 6


def test_epochs_override_is_a_new_configuration(sqlite_url):
    add_trials(sqlite_url, "tiny", [{"lr": 0.05, "value": 0.6, "epochs": 2}])

    summary = evaluate_best("tiny", storage_url=sqlite_url, draws=1, epochs=1, n_pairs=N_PAIRS, workers=1)

    assert summary.configurations[0].candidate.train.epochs == 1
    assert [r.epochs for r in _rows(sqlite_url)] == [1]

    evaluate_best("tiny", storage_url=sqlite_url, draws=1, epochs=2, n_pairs=N_PAIRS, workers=1)
    (stored,) = load_evaluations(sqlite_url, study_name="tiny")
    assert sorted(r.candidate.label for r in stored.configurations) == ["trial 0 (1 ep)", "trial 0 (2 ep)"]


def test_a_definitions_evaluate_epochs_is_the_default_and_epochs_overrides_it(sqlite_url):
    add_trials(
        sqlite_url, "smoke", [{"lr": 0.05, "value": 0.6, "epochs": 1}], definition=load_definition("smoke")
    )  # evaluate_epochs = 3
    add_trials(sqlite_url, "tiny", [{"lr": 0.05, "value": 0.6, "epochs": 1}])  # a study that keeps no definition

    evaluate_best("smoke", storage_url=sqlite_url, draws=1, n_pairs=N_PAIRS, workers=1)
    evaluate_best("smoke", storage_url=sqlite_url, draws=1, epochs=2, n_pairs=N_PAIRS, workers=1)
    evaluate_best("tiny", storage_url=sqlite_url, draws=1, n_pairs=N_PAIRS, workers=1)

    assert [r.epochs for r in _rows(sqlite_url, study_name="smoke")] == [3, 2]
    assert [r.epochs for r in _rows(sqlite_url, study_name="tiny")] == [1]


def test_a_study_keeps_its_own_definition_whatever_its_name(sqlite_url, tmp_path):
    """A study created from the user's own file under a shipped name (ablation) evaluates with that file's
    cells and evaluate_epochs, not with those of studies/ablation.toml (four cells, no evaluate_epochs)."""
    add_trials(sqlite_url, "ablation", OWN_ABLATION_TRIALS, definition=own_ablation(tmp_path))

    summary = evaluate_best("ablation", storage_url=sqlite_url, draws=2, n_pairs=N_PAIRS, workers=1)

    assert [r.candidate.label for r in summary.configurations] == ["weight_sharing=True", "weight_sharing=False"]
    assert [r.candidate.trial_number for r in summary.configurations] == [2, 1]  # each cell's best
    assert all(r.candidate.train.epochs == 2 for r in summary.configurations)  # its own evaluate_epochs
    assert [r.epochs for r in _rows(sqlite_url, study_name="ablation")] == [2] * 4
    assert len(summary.comparisons) == 1


def test_bad_input_gets_one_clear_message(sqlite_url):
    add_trials(sqlite_url, "tiny", [{"lr": 0.05, "value": 0.6}])
    add_trials(sqlite_url, "empty", [])
    with pytest.raises(StorageError, match="has no study 'nope'; it holds: empty, tiny"):
        evaluate_best("nope", storage_url=sqlite_url, draws=1, workers=1)
    with pytest.raises(EvaluationError, match="'empty' has no completed trial"):
        evaluate_best("empty", storage_url=sqlite_url, draws=1, workers=1)
    for draws in (0, 101):
        with pytest.raises(EvaluationError, match=rf"draws must be between 1 and 100, but got draws={draws}"):
            evaluate_best("tiny", storage_url=sqlite_url, draws=draws, workers=1)
    with pytest.raises(EvaluationError, match="top must be at least 1"):
        evaluate_best("tiny", storage_url=sqlite_url, top=0, workers=1)
    with pytest.raises(
        EvaluationError,
        match="finalists must be between 1 and 100 and repeats between 1 and 20, but got finalists=0, repeats=3",
    ):
        evaluate_best("tiny", storage_url=sqlite_url, finalists=0, workers=1)
    with pytest.raises(
        EvaluationError,
        match="finalists must be between 1 and 100 and repeats between 1 and 20, but got finalists=10, repeats=0",
    ):
        evaluate_best("tiny", storage_url=sqlite_url, repeats=0, workers=1)
    with pytest.raises(
        ConfigError, match=r"Unknown preset\(s\) 'nope'; the presets are seedNNN/row, e.g. seed000/baseline, "
    ):
        reproduce(["nope", "seed002/mlp"], storage_url=sqlite_url, draws=1, workers=1)
    with pytest.raises(ConfigError, match=r"Unknown report '9'; the reports are 000, 001, 002, 003, 004 \(or 'all'\)"):
        reproduce(report="9", storage_url=sqlite_url, draws=1, workers=1)
    with pytest.raises(EvaluationError, match="needs a direct database URL"):
        evaluate_best("tiny", storage_url="grpc://127.0.0.1:1", draws=1, workers=1)
    assert _rows(sqlite_url) == []


def test_a_preset_variant_changes_one_factor_and_is_stored_beside_its_preset(sqlite_url):
    base = reproduce(["seed003/fnn-ws-al"], storage_url=sqlite_url, draws=2, epochs=1, n_pairs=N_PAIRS, workers=1)
    variant = reproduce(
        ["seed003/fnn-ws-al"],
        storage_url=sqlite_url,
        draws=2,
        epochs=1,
        n_pairs=N_PAIRS,
        changes={"momentum": 0.9},
        workers=1,
    )

    (b,), (v,) = base.configurations, variant.configurations
    assert v.candidate.preset == "seed003/fnn-ws-al [momentum=0.9]" and v.candidate.train.momentum == 0.9
    assert v.candidate.published_mean == b.candidate.published_mean == 0.9356  # compared with the same figure
    assert v.candidate.key != b.candidate.key and variant.n_trained == 2
    (stored,) = load_results(sqlite_url)
    assert sorted(r.candidate.preset for r in stored.configurations) == [
        "seed003/fnn-ws-al",
        "seed003/fnn-ws-al [momentum=0.9]",
    ]
    assert all(r.candidate.published_mean == 0.9356 for r in stored.configurations)
    with pytest.raises(ConfigError, match="Unknown field"):
        reproduce(["seed003/fnn-ws-al"], storage_url=sqlite_url, draws=1, changes={"momentm": 0.9}, workers=1)


def _as_stored_by_an_older_version(url: str, row_id: int, *, created_at: str | None = None) -> str:
    """Rewrite a row as a version without TrainConfig.decay_to, which hashed every field and recorded no
    schema version, stored it (same configuration, other key)."""
    import hashlib

    engine = sqlalchemy.create_engine(url)  # not open_evaluations: it would migrate what this writes
    with engine.begin() as connection:
        connection.execute(sqlalchemy.text("DELETE FROM search_schema_versions"))
        text = connection.scalar(select(EvaluationRow.config_json).where(EvaluationRow.id == row_id))
        data = json.loads(text)
        del data["train"]["decay_to"]
        old_text = json.dumps(data, sort_keys=True)
        old_key = hashlib.sha256(old_text.encode()).hexdigest()[:24]
        values = {"config_key": old_key, "config_json": old_text}
        if created_at is not None:
            values["created_at"] = datetime.datetime.fromisoformat(created_at).replace(tzinfo=datetime.timezone.utc)
        connection.execute(sqlalchemy.update(EvaluationRow).where(EvaluationRow.id == row_id).values(**values))
    engine.dispose()
    return old_key


def test_rows_stored_before_a_config_field_was_added_keep_counting(storage_url):
    first = reproduce(["seed002/mlp"], storage_url=storage_url, draws=2, epochs=1, n_pairs=N_PAIRS, workers=1)
    key = first.configurations[0].candidate.key
    one, two = _rows(storage_url)
    # draw 1001 as an older version stored it; draw 1000 stored twice: now and, with another figure, before
    old_key = _as_stored_by_an_older_version(storage_url, two.id)
    engine = sqlalchemy.create_engine(storage_url)
    with engine.begin() as connection:
        connection.execute(
            sqlalchemy.insert(EvaluationRow).values(
                **{c: getattr(one, c) for c in ("preset", "draw_seed", "n_pairs", "data_source", "epochs", "status")},
                config_key="pending",
                config_json=one.config_json,
                test_accuracy=0.123,
                train_seconds=1.0,
                n_params=one.n_params,
                created_at=datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc),
            )
        )
        stale_id = connection.scalar(select(func.max(EvaluationRow.id)))
    _as_stored_by_an_older_version(storage_url, stale_id, created_at="2026-01-01 00:00:00")
    assert old_key != key
    with engine.connect() as connection:
        assert connection.scalar(select(func.count()).where(EvaluationRow.config_key == old_key)) == 2
    engine.dispose()

    again = reproduce(["seed002/mlp"], storage_url=storage_url, draws=2, epochs=1, n_pairs=N_PAIRS, workers=1)

    assert again.n_trained == 0  # both draws found under the configuration's key of today
    assert again.configurations[0].accuracies == first.configurations[0].accuracies  # the newer draw 1000 stays
    rows = _rows(storage_url)
    assert [(r.draw_seed, r.config_key) for r in rows] == [(1000, key), (1001, key)]
    assert "decay_to" in json.loads(rows[1].config_json)["train"]
    (stored,) = load_evaluations(storage_url)
    assert [r.candidate.preset for r in stored.configurations] == ["seed002/mlp"]
