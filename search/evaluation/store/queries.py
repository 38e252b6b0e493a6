"""The evaluations table's queries: open it (migrated), what is stored for a candidate, store a chunk of
draws, read a study's or the presets' results back, delete a study. Rows are committed after each chunk
of draws; `load_evaluations` reads what is stored back as results without training anything.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy
import sqlalchemy.exc
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from search.errors import EvaluationError
from search.evaluation.results import Candidate, ConfigurationResult, DrawResult, EvaluationSummary, config_json
from search.evaluation.store.mapping import distinct_labels, result_from_rows, stored_candidate
from search.evaluation.store.migrations import migrate
from search.evaluation.store.schema import EvaluationRow
from search.storage.studies import open_storage
from search.storage.urls import direct_database_url

__all__ = [
    "database_url",
    "delete_study",
    "load_evaluations",
    "open_evaluations",
    "store_draws",
    "stored_rows",
    "stored_seeds",
]


def database_url(storage_url: str | None) -> str:
    """The resolved storage URL, refused when it is a gRPC proxy (which serves Optuna's tables only)."""
    return direct_database_url(storage_url, user="The evaluations table", error=EvaluationError)


@contextmanager
def open_evaluations(storage_url: str | None, *, reading: bool = False) -> Iterator[Engine]:
    """The engine of the storage's database with the `evaluations` table created if missing.

    The engine is the one `open_storage` builds for Optuna (SQLite busy timeout, PostgreSQL pre-ping),
    so the table sits next to the study. `reading`: an existing storage, possibly read-only, where
    the table is not created (callers check `has_table`).
    """
    engine: Engine = open_storage(database_url(storage_url), reading=reading).engine
    try:
        if not reading:
            migrate(engine)
        yield engine
    finally:
        engine.dispose()


def load_evaluations(storage_url: str | None, *, study_name: str | None = None) -> list[EvaluationSummary]:
    """What is stored for a study (or, with `study_name` None, for the presets), without training anything.

    One summary per data setting (data source, pairs per draw); in each, one configuration result per
    stored configuration over all the draws stored for it. Configurations come back in trial (or
    preset) order, without comparisons and without the presets' published figures, which belong to the
    reproduction layer (`search.reporting.published.load_results` adds them).
    """
    owner = EvaluationRow.preset.is_not(None) if study_name is None else EvaluationRow.study_name == study_name
    with open_evaluations(storage_url, reading=True) as engine, Session(engine) as session:
        if not sqlalchemy.inspect(engine).has_table(EvaluationRow.__tablename__):
            return []  # nothing evaluated in this storage yet
        rows = list(session.scalars(select(EvaluationRow).where(owner).order_by(EvaluationRow.id)))
        session.expunge_all()
    groups: dict[tuple[str, int, str | None, str], list[EvaluationRow]] = {}
    for row in rows:
        groups.setdefault((row.data_source, row.n_pairs, row.preset, row.config_key), []).append(row)
    settings: dict[tuple[str, int], list[ConfigurationResult]] = {}
    for (source, n_pairs, _, _), members in groups.items():
        members.sort(key=lambda r: r.draw_seed)
        settings.setdefault((source, n_pairs), []).append(result_from_rows(stored_candidate(members), members))
    summaries = []
    for (source, n_pairs), results in settings.items():
        results.sort(key=lambda r: (r.candidate.preset or "", r.candidate.trial_number or 0))
        results = distinct_labels(results)
        seeds = sorted({seed for r in results for seed in r.accuracies})
        summaries.append(EvaluationSummary(study_name, source, n_pairs, tuple(seeds), tuple(results)))
    return summaries


def _where(candidate: Candidate, *, study_name: str | None, n_pairs: int, data_source: str) -> list[Any]:
    owner = EvaluationRow.preset == candidate.preset if study_name is None else EvaluationRow.study_name == study_name
    return [
        owner,
        EvaluationRow.config_key == candidate.key,
        EvaluationRow.n_pairs == n_pairs,
        EvaluationRow.data_source == data_source,
    ]


def stored_seeds(
    engine: Engine, candidate: Candidate, *, study_name: str | None, n_pairs: int, data_source: str
) -> set[int]:
    query = select(EvaluationRow.draw_seed).where(
        *_where(candidate, study_name=study_name, n_pairs=n_pairs, data_source=data_source)
    )
    with engine.connect() as connection:
        return set(connection.scalars(query))


def stored_rows(
    engine: Engine, candidate: Candidate, *, study_name, n_pairs, data_source, seeds
) -> list[EvaluationRow]:
    query = (
        select(EvaluationRow)
        .where(*_where(candidate, study_name=study_name, n_pairs=n_pairs, data_source=data_source))
        .where(EvaluationRow.draw_seed.in_(seeds))
        .order_by(EvaluationRow.draw_seed)
    )
    with Session(engine) as session:
        rows = list(session.scalars(query))
        session.expunge_all()
    return rows


def store_draws(
    engine: Engine,
    candidate: Candidate,
    results: list[DrawResult],
    *,
    study_name: str | None,
    n_pairs: int,
    data_source: str,
) -> None:
    """Insert one chunk's rows in one transaction; a draw another run stored meanwhile is skipped."""
    now = datetime.datetime.now(datetime.timezone.utc)
    values = [
        {
            "study_name": study_name,
            "preset": candidate.preset if study_name is None else None,
            "trial_number": candidate.trial_number,
            "config_key": candidate.key,
            "config_json": config_json(candidate.net, candidate.train),
            "draw_seed": r.seed,
            "n_pairs": n_pairs,
            "data_source": data_source,
            "epochs": candidate.train.epochs,
            "status": r.status,
            "message": r.message or None,
            "test_accuracy": r.accuracy,
            "test_digit_accuracy": r.digit_accuracy,
            "best_epoch_accuracy": r.best_epoch_accuracy,
            "train_seconds": r.seconds,
            "n_params": r.n_params,
            "created_at": now,
        }
        for r in results
    ]
    dialect = engine.dialect.name
    if dialect in ("sqlite", "postgresql"):
        insert = sqlite.insert if dialect == "sqlite" else postgresql.insert
        with engine.begin() as connection:
            connection.execute(insert(EvaluationRow).on_conflict_do_nothing(), values)
        return
    for row in values:  # other backends: row by row, a duplicate is simply not inserted
        try:
            with engine.begin() as connection:
                connection.execute(sqlalchemy.insert(EvaluationRow), [row])
        except sqlalchemy.exc.IntegrityError:
            pass


def delete_study(storage_url: str | None, study_name: str) -> tuple[int, int]:
    """Delete a study: its trials (Optuna's tables) and its rows of the evaluations table, in that order, so
    that nothing of it is left half-deleted to resume. Returns (trials, evaluation rows) deleted."""
    import optuna

    url = database_url(storage_url)
    storage = open_storage(url)
    try:
        study_id = storage.get_study_id_from_name(study_name)
    except KeyError:
        names = ", ".join(sorted(s.study_name for s in storage.get_all_studies())) or "none"
        raise EvaluationError(f"No study named {study_name!r} in this storage (studies: {names}).") from None
    n_trials = len(storage.get_all_trials(study_id, deepcopy=False))
    optuna.delete_study(study_name=study_name, storage=storage)
    with open_evaluations(url) as engine, engine.begin() as connection:
        deleted = connection.execute(sqlalchemy.delete(EvaluationRow).where(EvaluationRow.study_name == study_name))
    return n_trials, deleted.rowcount
