"""The evaluations table's versioned migrations and its stable configuration keys, on real SQLite and
PostgreSQL databases: a fresh database is made at the latest schema, a legacy one is migrated once (also
by processes opening it at the same moment), a migrated one is left alone, a newer one is refused."""

from __future__ import annotations

import datetime
import hashlib
import json
import threading

import pytest
import sqlalchemy
from sqlalchemy import select

from models.nets.configs import NetConfig, TrainConfig
from search.errors import EvaluationError
from search.evaluation.results import config_json, config_key
from search.evaluation.store import EvaluationRow, open_evaluations
from search.evaluation.store.migrations import MIGRATIONS, schema_version
from search.evaluation.store.schema import SchemaVersion

NET = NetConfig(conv_channels=(8, 16), fc_width=32, batch_norm=True)
TRAIN = TrainConfig(lr=0.05, epochs=3, aux_loss="alpha", alpha=2.0)
LEGACY_TABLE = (
    "CREATE TABLE evaluations (id {id} PRIMARY KEY, study_name VARCHAR(512), trial_number INTEGER, "
    "preset VARCHAR(128), config_key VARCHAR(64) NOT NULL, config_json TEXT NOT NULL, draw_seed INTEGER NOT NULL, "
    "n_pairs INTEGER NOT NULL, data_source VARCHAR(1024) NOT NULL, epochs INTEGER NOT NULL, status VARCHAR(16) NOT NULL, "
    "message TEXT, test_accuracy FLOAT, test_digit_accuracy FLOAT, train_seconds FLOAT NOT NULL, n_params INTEGER NOT NULL, "
    "created_at TIMESTAMP WITH TIME ZONE NOT NULL)"
)


def _full_hash(text: str) -> str:
    """The key releases before the migrations computed: every field hashed, defaults included."""
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _legacy_database(url: str, *, rows: int = 3) -> str:
    """A database as a release before versioned migrations left it: no best_epoch_accuracy column, no
    version row, and keys that hash every field. Returns the old key."""
    text = config_json(NET, TRAIN)
    engine = sqlalchemy.create_engine(url)
    with engine.begin() as connection:
        serial = "SERIAL" if connection.dialect.name == "postgresql" else "INTEGER"
        connection.execute(sqlalchemy.text(LEGACY_TABLE.format(id=serial)))
        for seed in range(1000, 1000 + rows):
            connection.execute(
                sqlalchemy.text(
                    "INSERT INTO evaluations (preset, config_key, config_json, draw_seed, n_pairs, data_source, epochs, "
                    "status, test_accuracy, train_seconds, n_params, created_at) VALUES ('p', :key, :text, :seed, 100, "
                    "'embedded', 3, 'completed', 0.9, 1.0, 10, :at)"
                ),
                {"key": _full_hash(text), "text": text, "seed": seed, "at": datetime.datetime(2026, 11, 1)},
            )
    engine.dispose()
    return _full_hash(text)


def _keys_and_version(url: str) -> tuple[list[str], int | None]:
    engine = sqlalchemy.create_engine(url)
    with engine.connect() as connection:
        keys = list(connection.scalars(select(EvaluationRow.config_key).order_by(EvaluationRow.draw_seed)))
        version = schema_version(connection)
    engine.dispose()
    return keys, version


def test_a_fresh_database_gets_the_latest_schema_and_no_migration(storage_url):
    with open_evaluations(storage_url) as engine, engine.connect() as connection:
        assert sqlalchemy.inspect(connection).has_table("evaluations")
        assert schema_version(connection) == len(MIGRATIONS)
        assert "best_epoch_accuracy" in {c["name"] for c in sqlalchemy.inspect(connection).get_columns("evaluations")}


def test_a_legacy_table_is_migrated_once_and_then_left_alone(storage_url):
    old_key = _legacy_database(storage_url)
    assert old_key != config_key(NET, TRAIN)

    with open_evaluations(storage_url):
        pass

    keys, version = _keys_and_version(storage_url)
    assert keys == [config_key(NET, TRAIN)] * 3 and version == len(MIGRATIONS)
    engine = sqlalchemy.create_engine(storage_url)
    with engine.begin() as connection:  # a key no migration would give: a later open must not touch it
        connection.execute(
            sqlalchemy.update(EvaluationRow).where(EvaluationRow.draw_seed == 1000).values(config_key="x")
        )
    engine.dispose()

    with open_evaluations(storage_url):
        pass

    assert _keys_and_version(storage_url) == (["x", config_key(NET, TRAIN), config_key(NET, TRAIN)], len(MIGRATIONS))


def test_processes_opening_a_legacy_database_at_once_migrate_it_once(storage_url):
    _legacy_database(storage_url, rows=20)
    errors: list[BaseException] = []

    def open_it() -> None:
        try:
            with open_evaluations(storage_url):
                pass
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    keys, version = _keys_and_version(storage_url)
    assert keys == [config_key(NET, TRAIN)] * 20 and version == len(MIGRATIONS)
    engine = sqlalchemy.create_engine(storage_url)
    with engine.connect() as connection:
        assert connection.scalar(select(sqlalchemy.func.count()).select_from(SchemaVersion)) == 1
    engine.dispose()


def test_a_database_migrated_by_a_newer_version_is_refused_in_one_line(storage_url):
    with open_evaluations(storage_url):
        pass
    engine = sqlalchemy.create_engine(storage_url)
    with engine.begin() as connection:
        connection.execute(sqlalchemy.update(SchemaVersion).values(version=len(MIGRATIONS) + 1))
    engine.dispose()

    with pytest.raises(EvaluationError, match="migrated by a newer version of search") as raised:
        with open_evaluations(storage_url):
            pass
    assert "\n" not in str(raised.value)


def test_a_configuration_keeps_its_key_when_a_field_with_a_default_is_added():
    """A stored configuration lacks a field added since (read back with its default): same key."""
    stored = json.loads(config_json(NET, TRAIN))
    del stored["train"]["decay_to"], stored["net"]["digit_activation"]  # as a version before them wrote it
    read_back = NetConfig.from_dict(stored["net"]), TrainConfig.from_dict(stored["train"])
    assert config_key(*read_back) == config_key(NET, TRAIN)
    assert config_key(NetConfig(), TrainConfig()) == _full_hash(json.dumps({"net": {}, "train": {}}, sort_keys=True))


def test_configurations_that_differ_in_any_field_have_different_keys():
    keys = {
        config_key(NET, TRAIN),
        config_key(NET, TrainConfig(lr=0.05, epochs=3, aux_loss="alpha", alpha=2.5)),
        config_key(NetConfig(conv_channels=(8, 16), fc_width=33, batch_norm=True), TRAIN),
        config_key(NET, TrainConfig(lr=0.05, epochs=3, aux_loss="alpha", alpha=2.0, decay_to=0.5)),
    }
    assert len(keys) == 4
