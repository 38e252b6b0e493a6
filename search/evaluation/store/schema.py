"""The `evaluations` table: one row per configuration trained and scored on one draw.

It lives in the same database as the Optuna study (never behind the gRPC proxy, which serves Optuna's
tables only); a unique index keeps concurrent runs from storing one draw twice. Its columns change only
through a migration (search.evaluation.store.migrations).
"""

from __future__ import annotations

import datetime

from sqlalchemy import CheckConstraint, DateTime, Index, String, Text, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from search.variants import MAX_NAME

__all__ = ["EvaluationRow", "SchemaBase", "SchemaVersion"]


class SchemaBase(DeclarativeBase):
    """The tables of this store: the evaluations and the version of their schema."""


class EvaluationRow(SchemaBase):
    """One configuration trained and scored on one draw."""

    __tablename__ = "evaluations"
    __table_args__ = (
        CheckConstraint("(study_name IS NULL) <> (preset IS NULL)", name="ck_evaluations_study_or_preset"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    study_name: Mapped[str | None] = mapped_column(String(512))  # the Optuna study; None on a preset's row
    trial_number: Mapped[int | None]  # the first trial seen with this configuration; None for a preset
    # a preset's or a variant's name; None on a study's row
    preset: Mapped[str | None] = mapped_column(String(MAX_NAME))
    config_key: Mapped[str] = mapped_column(String(64))  # config_key(net, train): its non-default fields hashed
    config_json: Mapped[str] = mapped_column(Text)  # {"net": NetConfig.to_dict(), "train": TrainConfig.to_dict()}
    draw_seed: Mapped[int]
    n_pairs: Mapped[int]  # training pairs (= test pairs) of the draw
    data_source: Mapped[str] = mapped_column(String(1024))  # models' DigitPools.source: "embedded" or "idx:<dir>"
    epochs: Mapped[int]
    status: Mapped[str] = mapped_column(String(16))  # "completed" | "diverged": diverged rows stay out of the stats
    message: Mapped[str | None] = mapped_column(Text)  # why a draw diverged
    test_accuracy: Mapped[float | None]  # pair accuracy on the draw's test pairs
    test_digit_accuracy: Mapped[float | None]  # digit accuracy, for networks with digit outputs
    # the best test accuracy over epochs, where every epoch was scored (report 004)
    best_epoch_accuracy: Mapped[float | None]
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


class SchemaVersion(SchemaBase):
    """How far a database's store has been migrated: one row per table that has migrations."""

    __tablename__ = "search_schema_versions"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)  # the table, e.g. "evaluations"
    version: Mapped[int]  # the number of migrations applied
