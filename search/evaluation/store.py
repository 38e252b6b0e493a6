"""The `evaluations` table: one row per configuration trained and scored on one draw, and its queries.

It lives in the same database as the Optuna study (never behind the gRPC proxy, which serves
Optuna's tables only). Rows are committed after each chunk of draws; a unique index keeps
concurrent runs from storing one draw twice. `load_evaluations` reads what is stored back as
results (search.evaluation.results), without training anything.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import sqlalchemy
import sqlalchemy.exc
from sqlalchemy import CheckConstraint, DateTime, Index, String, Text, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from models.errors import ConfigError
from models.nets.configs import NetConfig, TrainConfig
from search.errors import EvaluationError
from search.evaluation.results import (
    Candidate,
    ConfigurationResult,
    DrawResult,
    EvaluationSummary,
    config_json,
    config_key,
)
from search.evaluation.stats import summarize
from search.storage.studies import open_storage
from search.storage.urls import direct_database_url
from search.variants import MAX_NAME

__all__ = [
    "EvaluationRow",
    "database_url",
    "delete_study",
    "load_evaluations",
    "open_evaluations",
    "result_from_rows",
    "store_draws",
    "stored_rows",
    "stored_seeds",
]


class _Base(DeclarativeBase):
    pass


class EvaluationRow(_Base):
    """One configuration trained and scored on one draw."""

    __tablename__ = "evaluations"
    __table_args__ = (
        CheckConstraint("(study_name IS NULL) <> (preset IS NULL)", name="ck_evaluations_study_or_preset"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    study_name: Mapped[str | None] = mapped_column(String(512))  # the Optuna study; None on a preset's row
    trial_number: Mapped[int | None]  # the first trial seen with this configuration; None for a preset
    preset: Mapped[str | None] = mapped_column(
        String(MAX_NAME)
    )  # a preset's or a variant's name; None on a study's row
    config_key: Mapped[str] = mapped_column(String(64))  # config_key(net, train)
    config_json: Mapped[str] = mapped_column(Text)  # {"net": NetConfig.to_dict(), "train": TrainConfig.to_dict()}
    draw_seed: Mapped[int]
    n_pairs: Mapped[int]  # training pairs (= test pairs) of the draw
    data_source: Mapped[str] = mapped_column(String(1024))  # models' DigitPools.source: "embedded" or "idx:<dir>"
    epochs: Mapped[int]
    status: Mapped[str] = mapped_column(String(16))  # "completed" | "diverged": diverged rows stay out of the stats
    message: Mapped[str | None] = mapped_column(Text)  # why a draw diverged
    test_accuracy: Mapped[float | None]  # pair accuracy on the draw's test pairs
    test_digit_accuracy: Mapped[float | None]  # digit accuracy, for networks with digit outputs
    best_epoch_accuracy: Mapped[
        float | None
    ]  # the best test accuracy over epochs, where every epoch was scored (report 004)
    train_seconds: Mapped[float]
    n_params: Mapped[int]
    created_at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True))  # UTC


# One row per (study or preset, configuration, draw, data). NULLs never collide in a unique index, so the
# nullable owner columns enter it through coalesce (an expression index, on SQLite and PostgreSQL alike).
Index(
    "uq_evaluations_draw",
    func.coalesce(EvaluationRow.study_name, ""),
    func.coalesce(EvaluationRow.preset, ""),
    EvaluationRow.config_key,
    EvaluationRow.draw_seed,
    EvaluationRow.n_pairs,
    EvaluationRow.data_source,
    unique=True,
)


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
            _create_table(engine)
        yield engine
    finally:
        engine.dispose()


def _create_table(engine: Engine) -> None:
    try:
        _Base.metadata.create_all(engine)
    except sqlalchemy.exc.DatabaseError:  # another process created it between our check and our CREATE
        _Base.metadata.create_all(engine)
    _add_missing_columns(engine)
    _rekey(engine)


def _add_missing_columns(engine: Engine) -> None:
    """A table made by an earlier version lacks the nullable columns added since: add them (old rows keep NULL)."""
    present = {column["name"] for column in sqlalchemy.inspect(engine).get_columns(EvaluationRow.__tablename__)}
    for column in EvaluationRow.__table__.columns:
        if column.name in present:
            continue
        kind = column.type.compile(dialect=engine.dialect)
        try:
            with engine.begin() as connection:
                connection.execute(
                    sqlalchemy.text(f"ALTER TABLE {EvaluationRow.__tablename__} ADD COLUMN {column.name} {kind}")
                )
        except sqlalchemy.exc.DatabaseError:  # another process added it first
            pass


def _rekey(engine: Engine) -> None:
    """Give every row the key of its configuration as this version writes it.

    A row's key hashes its configuration as serialised when it was stored; a config field added since
    (whose default keeps the old behaviour) changes the key of the very same configuration, and its
    draws would then be trained again and reported twice. Each stored configuration is read back through
    NetConfig/TrainConfig and re-keyed; where that makes two rows of one draw, the newer one stays."""
    with engine.connect() as connection:
        stored = connection.execute(select(EvaluationRow.config_key, EvaluationRow.config_json).distinct()).all()
    moves = {}
    for old_key, text in stored:
        try:
            data = json.loads(text)
            net, train = NetConfig.from_dict(data["net"]), TrainConfig.from_dict(data["train"])
        except (ValueError, KeyError, TypeError, ConfigError):  # one this version cannot read stays as it is
            continue
        new_key = config_key(net, train)
        if new_key != old_key:
            moves[old_key] = (new_key, config_json(net, train))
    if not moves:
        return
    draw = (
        func.coalesce(EvaluationRow.study_name, ""),
        func.coalesce(EvaluationRow.preset, ""),
        EvaluationRow.draw_seed,
        EvaluationRow.n_pairs,
        EvaluationRow.data_source,
    )
    try:
        with engine.begin() as connection:
            for old_key, (new_key, text) in moves.items():
                rows = connection.execute(
                    select(EvaluationRow.id, EvaluationRow.created_at, *draw).where(EvaluationRow.config_key == old_key)
                ).all()
                for row_id, created_at, *where in rows:
                    twin = connection.execute(
                        select(EvaluationRow.id, EvaluationRow.created_at).where(
                            EvaluationRow.config_key == new_key, *(c == v for c, v in zip(draw, where, strict=True))
                        )
                    ).first()
                    if twin is not None and twin.created_at >= created_at:
                        connection.execute(sqlalchemy.delete(EvaluationRow).where(EvaluationRow.id == row_id))
                        continue
                    if twin is not None:
                        connection.execute(sqlalchemy.delete(EvaluationRow).where(EvaluationRow.id == twin.id))
                    connection.execute(
                        sqlalchemy.update(EvaluationRow)
                        .where(EvaluationRow.id == row_id)
                        .values(config_key=new_key, config_json=text)
                    )
    except sqlalchemy.exc.DatabaseError:  # another process re-keyed them first
        pass


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
        settings.setdefault((source, n_pairs), []).append(result_from_rows(_stored_candidate(members), members))
    summaries = []
    for (source, n_pairs), results in settings.items():
        results.sort(key=lambda r: (r.candidate.preset or "", r.candidate.trial_number or 0))
        results = _distinct_labels(results)
        seeds = sorted({seed for r in results for seed in r.accuracies})
        summaries.append(EvaluationSummary(study_name, source, n_pairs, tuple(seeds), tuple(results)))
    return summaries


def _distinct_labels(results: list[ConfigurationResult]) -> list[ConfigurationResult]:
    """One trial evaluated at several --epochs gets the epochs in its label, so tables and plots tell them apart."""
    counts = Counter(r.candidate.label for r in results)
    return [
        dataclasses.replace(
            r, candidate=dataclasses.replace(r.candidate, label=f"{r.candidate.label} ({r.candidate.train.epochs} ep)")
        )
        if counts[r.candidate.label] > 1
        else r
        for r in results
    ]


def _stored_candidate(rows: Sequence[EvaluationRow]) -> Candidate:
    """The candidate a group of stored rows (one configuration) was evaluated as."""
    config = json.loads(rows[0].config_json)
    preset = rows[0].preset
    numbers = [r.trial_number for r in rows if r.trial_number is not None]
    return Candidate(
        label=preset if preset is not None else f"trial {min(numbers)}" if numbers else rows[0].config_key,
        net=NetConfig.from_dict(config["net"]),
        train=TrainConfig.from_dict(config["train"]),
        trial_number=min(numbers) if numbers else None,
        preset=preset,
    )


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


def draw_result(row: EvaluationRow) -> DrawResult:
    """A stored draw as training gave it back, to store it again under another preset of one configuration."""
    return DrawResult(
        seed=row.draw_seed,
        status=row.status,
        message=row.message or "",
        accuracy=row.test_accuracy,
        digit_accuracy=row.test_digit_accuracy,
        best_epoch_accuracy=row.best_epoch_accuracy,
        seconds=row.train_seconds,
        n_params=row.n_params,
    )


def result_from_rows(candidate: Candidate, rows: Sequence[EvaluationRow]) -> ConfigurationResult:
    completed = [r for r in rows if r.status == "completed" and r.test_accuracy is not None]
    accuracies = {r.draw_seed: r.test_accuracy for r in completed}
    digits = {r.draw_seed: r.test_digit_accuracy for r in completed if r.test_digit_accuracy is not None}
    best = {r.draw_seed: r.best_epoch_accuracy for r in completed if r.best_epoch_accuracy is not None}
    return ConfigurationResult(
        candidate=candidate,
        n_params=rows[0].n_params if rows else _count_parameters(candidate.net),
        accuracies=accuracies,
        digit_accuracies=digits,
        n_diverged=len(rows) - len(completed),
        train_seconds=sum(r.train_seconds for r in rows) / len(rows) if rows else 0.0,
        accuracy=summarize(list(accuracies.values())),
        digit_accuracy=summarize(list(digits.values())) if digits else None,
        best_epoch_accuracies=best,
        best_epoch_accuracy=summarize(list(best.values())) if best else None,
    )


def _count_parameters(net: NetConfig) -> int:
    from models.nets.families import count_parameters

    return count_parameters(net)


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
