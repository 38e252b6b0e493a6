"""Versioned migrations of the `evaluations` table.

A database records how many migrations its table has had (`search_schema_versions`). A writable open
applies the missing ones, in order, in one transaction that holds the database's write lock (SQLite's
BEGIN IMMEDIATE, a PostgreSQL advisory lock), so processes opening one database at once migrate it once;
afterwards an open reads one row and changes nothing. A fresh database gets the table as this version
defines it, every migration counted as done. A table made before versions were recorded is at 0.

A new column or a new rule for stored rows is a new migration appended to MIGRATIONS: never an edit of
one that has shipped, which databases out there have already had.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy
import sqlalchemy.exc
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, select
from sqlalchemy.engine import Connection, Engine

from models.errors import ConfigError
from models.nets.configs import NetConfig, TrainConfig
from search.errors import EvaluationError
from search.evaluation.results import config_json, config_key
from search.evaluation.store.schema import EvaluationRow, SchemaBase, SchemaVersion

__all__ = ["MIGRATIONS", "Migration", "migrate", "schema_version"]

logger = logging.getLogger(__name__)

TABLE = EvaluationRow.__tablename__
ADVISORY_LOCK = 559_201_700  # PostgreSQL: the one lock every migrating process of this store takes


@dataclass(frozen=True)
class Migration:
    description: str
    apply: Callable[[Connection], None]


def _columns_of_the_first_releases(connection: Connection) -> None:
    """Tables made by the first releases lack nullable columns added before versions were recorded."""
    present = {column["name"] for column in sqlalchemy.inspect(connection).get_columns(TABLE)}
    operations = Operations(MigrationContext.configure(connection))
    for name in ("best_epoch_accuracy",):
        if name not in present:
            operations.add_column(TABLE, sqlalchemy.Column(name, EvaluationRow.__table__.c[name].type, nullable=True))


def _stable_config_keys(connection: Connection) -> None:
    """Give every row the key this version computes for its configuration (its non-default fields).

    Keys used to hash every field, defaults included, so a field added later changed the key of the very
    same configuration. Each stored configuration is read back through NetConfig/TrainConfig and
    re-keyed; where that makes two rows of one draw, the newer one stays. One that this version cannot
    read keeps its key."""
    stored = connection.execute(select(EvaluationRow.config_key, EvaluationRow.config_json).distinct()).all()
    moves = {}
    for old_key, text in stored:
        try:
            data = json.loads(text)
            net, train = NetConfig.from_dict(data["net"]), TrainConfig.from_dict(data["train"])
        except (ValueError, KeyError, TypeError, ConfigError):
            continue
        new_key = config_key(net, train)
        if new_key != old_key:
            moves[old_key] = (new_key, config_json(net, train))
    draw = (
        func.coalesce(EvaluationRow.study_name, ""),
        func.coalesce(EvaluationRow.preset, ""),
        EvaluationRow.draw_seed,
        EvaluationRow.n_pairs,
        EvaluationRow.data_source,
    )
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


MIGRATIONS = (
    Migration("the nullable columns of the first releases", _columns_of_the_first_releases),
    Migration("configuration keys that hash only the fields set away from their defaults", _stable_config_keys),
)


def schema_version(connection: Connection) -> int | None:
    """The migrations the table has had; None where none were recorded (a fresh database or a legacy table)."""
    if not sqlalchemy.inspect(connection).has_table(SchemaVersion.__tablename__):
        return None
    return connection.scalar(select(SchemaVersion.version).where(SchemaVersion.name == TABLE))


def migrate(engine: Engine) -> None:
    """Bring the database's table to this version's schema: create it, or apply the migrations it lacks."""
    try:
        SchemaBase.metadata.create_all(engine, tables=[SchemaVersion.__table__])
    except sqlalchemy.exc.DatabaseError:  # another process created it between the check and the CREATE
        pass
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(select(func.pg_advisory_xact_lock(ADVISORY_LOCK)))
        version = schema_version(connection)
        if version is None:
            fresh = not sqlalchemy.inspect(connection).has_table(TABLE)
            if fresh:
                SchemaBase.metadata.create_all(connection, tables=[EvaluationRow.__table__])
            version = len(MIGRATIONS) if fresh else 0
            connection.execute(sqlalchemy.insert(SchemaVersion).values(name=TABLE, version=version))
        if version > len(MIGRATIONS):
            raise EvaluationError(
                f"The {TABLE} table was migrated by a newer version of search (schema {version}; this one knows "
                f"{len(MIGRATIONS)}): upgrade search to use this database."
            )
        for number, migration in enumerate(MIGRATIONS[version:], start=version + 1):
            logger.info("%s table: migration %d, %s", TABLE, number, migration.description)
            migration.apply(connection)
        if version < len(MIGRATIONS):
            connection.execute(
                sqlalchemy.update(SchemaVersion).where(SchemaVersion.name == TABLE).values(version=len(MIGRATIONS))
            )
