"""search/storage/studies.py: URL resolution and checks, SQLite pragmas, PostgreSQL pool, retries, what a storage holds."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path

import optuna
import pytest
import sqlalchemy

from search.errors import StorageError
from search.storage import retrying as retrying_storage
from search.storage import studies as storage_module
from search.storage.studies import (
    DEFAULT_STORAGE_URL,
    best_trials,
    check_heartbeat,
    check_max_outage,
    list_studies,
    load_study,
    mask_url,
    open_storage,
    resolve_storage_url,
)
from search.study.record import TrialRecord

pytestmark = pytest.mark.filterwarnings("ignore:Heartbeat of storage:UserWarning")  # studies built with ask/tell


def _add_trials(url: str, name: str, values: list[float | None], *, direction: str = "maximize") -> optuna.Study:
    """A study of finished trials (None: a pruned one) written through plain Optuna."""
    study = optuna.create_study(study_name=name, storage=open_storage(url), direction=direction)
    for value in values:
        trial = study.ask()
        trial.suggest_float("lr", 0.01, 0.1)
        TrialRecord(fold_std=0.01).write(trial)
        if value is None:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(trial, value)
    return study


# --- resolve_storage_url / mask_url -------------------------------------------------------------------


def test_resolve_prefers_flag_then_env_then_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEARCH_STORAGE", "sqlite:///env.db")
    assert resolve_storage_url("sqlite:///flag.db") == "sqlite:///flag.db"
    assert resolve_storage_url(None) == "sqlite:///env.db"
    monkeypatch.delenv("SEARCH_STORAGE")
    assert resolve_storage_url(None) == DEFAULT_STORAGE_URL == "sqlite:///search.db"
    assert resolve_storage_url("  ") == DEFAULT_STORAGE_URL


def test_mask_url_hides_the_password_only() -> None:
    assert mask_url("postgresql+psycopg://search:s3cret@db:5432/x") == "postgresql+psycopg://search:***@db:5432/x"
    assert mask_url("sqlite:///a.db") == "sqlite:///a.db"


# --- bad URLs and paths: one StorageError line each --------------------------------------------------


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("not a url", "Malformed storage URL"),
        ("redis://localhost:6379/0", "Unsupported storage URL"),
        ("postgresql+psycopg://u:pw@localhost:5432", "names no database"),
        ("sqlite://", "in-memory SQLite"),
        ("sqlite:///:memory:", "in-memory SQLite"),
        ("grpc://localhost:notaport", "port must be a number"),
        ("grpc://localhost", "expected grpc://host:port"),
    ],
)
def test_bad_urls_are_refused(url: str, match: str) -> None:
    with pytest.raises(StorageError, match=match):
        open_storage(url)


def test_sqlite_in_a_missing_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match=r"directory .*missing.* does not exist"):
        open_storage(f"sqlite:///{tmp_path / 'missing' / 'search.db'}")


def test_sqlite_path_that_is_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="it is a directory"):
        open_storage(f"sqlite:///{tmp_path}")


def test_sqlite_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("these are not the tables you are looking for\n" * 100)
    with pytest.raises(StorageError, match="Cannot open the SQLite storage"):
        open_storage(f"sqlite:///{path}")


def test_unreachable_postgres_names_the_url_with_the_password_masked() -> None:
    started = time.monotonic()
    with pytest.raises(
        StorageError, match=r"Cannot reach the storage postgresql\+psycopg://search:\*\*\*@127\.0\.0\.1:1/x"
    ) as error:
        open_storage("postgresql+psycopg://search:topsecret@127.0.0.1:1/x")
    assert "topsecret" not in str(error.value)
    assert time.monotonic() - started < 15


def test_unreachable_grpc_proxy_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(storage_module, "GRPC_READY_TIMEOUT", 0.5)
    with pytest.raises(StorageError, match="No gRPC storage proxy answers at 127.0.0.1:1 .*search proxy"):
        open_storage("grpc://127.0.0.1:1")


# --- heartbeat settings ---------------------------------------------------------------------------


def test_heartbeat_defaults() -> None:
    assert check_heartbeat(None, None) == (30.0, 90.0)
    assert check_heartbeat(60, None) == (60.0, 180.0)  # the default grace period grows with the interval
    assert check_heartbeat(1, 3) == (1.0, 3.0)


@pytest.mark.parametrize(
    ("interval", "grace", "match"),
    [(0, 10, "positive"), (-1, 10, "positive"), (30, 60, "more than twice"), (10, 5, "more than twice")],
)
def test_heartbeat_pairs_that_would_fail_live_trials_are_refused(interval: float, grace: float, match: str) -> None:
    with pytest.raises(StorageError, match=match):
        check_heartbeat(interval, grace)


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")  # fail_stale_trials, as runs call it
def test_a_stale_trial_is_failed_and_retried_once(sqlite_url: str) -> None:
    storage = open_storage(sqlite_url, heartbeat_interval=2, grace_period=7)
    assert (storage.get_heartbeat_interval(), storage.grace_period) == (2, 7)
    study = optuna.create_study(study_name="stale", storage=storage, direction="maximize")
    engine = sqlalchemy.create_engine(sqlite_url)

    def go_stale(trial: optuna.Trial) -> None:
        """The trial's worker beat once, then died: its last heartbeat is older than the grace period."""
        study_id = storage.get_study_id_from_name(study.study_name)
        storage.record_heartbeat(storage.get_trial_id_from_study_id_trial_number(study_id, trial.number))
        with engine.begin() as connection:
            connection.execute(sqlalchemy.text("UPDATE trial_heartbeats SET heartbeat = '2000-01-01 00:00:00'"))
        optuna.storages.fail_stale_trials(study)

    first = study.ask()
    first.suggest_int("x", 0, 9)
    go_stale(first)
    retry = study.ask()  # the retry, queued with the failed trial's parameters
    assert retry.number == 1 and retry.suggest_int("x", 0, 9) == first.params["x"]
    assert study.get_trials(deepcopy=False)[1].system_attrs["failed_trial"] == first.number
    go_stale(retry)

    states = [t.state for t in study.get_trials(deepcopy=False)]
    assert states == [optuna.trial.TrialState.FAIL, optuna.trial.TrialState.FAIL]  # the retry is not retried again
    engine.dispose()


# --- SQLite: WAL, busy timeout, retry ---------------------------------------------------------------


def test_sqlite_storage_uses_wal_and_a_busy_timeout(tmp_path: Path) -> None:
    path = tmp_path / "wal.db"
    storage = open_storage(f"sqlite:///{path}")
    assert storage.engine.dialect.name == "sqlite"
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert storage.engine_kwargs["connect_args"]["timeout"] >= 30


def test_a_new_file_being_written_by_another_process_is_waited_for(tmp_path: Path) -> None:
    """Two `search run`s opening one new file at once: the second meets the first creating Optuna's tables.

    SQLite refuses the switch to WAL at once, busy timeout or not, while another connection holds the
    write lock of a file still in rollback mode; that refusal used to end the second run.
    """
    path = tmp_path / "new.db"
    blocker = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    blocker.execute("CREATE TABLE other_process (x)")
    blocker.execute("BEGIN IMMEDIATE")
    blocker.execute("INSERT INTO other_process VALUES (1)")
    release = threading.Timer(0.5, lambda: blocker.execute("COMMIT"))
    release.start()
    try:
        storage = open_storage(f"sqlite:///{path}")
    finally:
        release.join()
        blocker.close()
    assert storage.get_all_studies() == []
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_locked_sqlite_file_is_retried_until_the_lock_goes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(storage_module, "SQLITE_BUSY_TIMEOUT", 0.1)
    monkeypatch.setattr(retrying_storage, "RETRY_DELAYS", (0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3))
    path = tmp_path / "locked.db"
    storage = open_storage(f"sqlite:///{path}")
    study_id = storage.create_new_study([optuna.study.StudyDirection.MAXIMIZE], "locked")
    blocker = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    blocker.execute("BEGIN EXCLUSIVE")
    release = threading.Timer(1.0, lambda: blocker.execute("COMMIT"))
    release.start()
    try:
        storage.set_study_user_attr(study_id, "written", True)  # "database is locked" until the timer commits
    finally:
        release.join()
        blocker.close()
    assert storage.get_study_user_attrs(study_id) == {"written": True}


def test_a_lock_that_never_goes_ends_in_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(storage_module, "SQLITE_BUSY_TIMEOUT", 0.05)
    monkeypatch.setattr(retrying_storage, "RETRY_DELAYS", (0.05, 0.05))
    path = tmp_path / "stuck.db"
    storage = open_storage(
        f"sqlite:///{path}", max_outage=1.0
    )  # attempts at ~0.05, 0.15, 0.25 s; the next would pass 1 s
    study_id = storage.create_new_study([optuna.study.StudyDirection.MAXIMIZE], "stuck")
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(
            StorageError, match=r"Lost the connection to the storage .*database is locked.*gave up after 3 attempts"
        ):
            storage.set_study_user_attr(study_id, "written", True)
    finally:
        blocker.close()


def test_a_heartbeat_that_cannot_be_written_is_logged_not_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Optuna records heartbeats in a thread of its own: raising there would stop the beats of a live trial.
    monkeypatch.setattr(storage_module, "SQLITE_BUSY_TIMEOUT", 0.05)
    monkeypatch.setattr(retrying_storage, "RETRY_DELAYS", (0.05,))
    path = tmp_path / "beats.db"
    storage = open_storage(f"sqlite:///{path}", heartbeat_interval=1, grace_period=3)
    trial_id = storage.create_new_trial(storage.create_new_study([optuna.study.StudyDirection.MAXIMIZE], "beats"))
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        storage.record_heartbeat(trial_id)
    finally:
        blocker.close()
    assert f"heartbeat of trial id {trial_id} not recorded" in caplog.text
    storage.record_heartbeat(trial_id)  # the lock is gone: the next beat lands


# --- PostgreSQL ---------------------------------------------------------------------------------------


@pytest.mark.postgres
def test_postgres_pool_pings_before_use_and_survives_dropped_connections(pg_url: str) -> None:
    storage = open_storage(pg_url)
    study_id = storage.create_new_study([optuna.study.StudyDirection.MAXIMIZE], "dropped")
    # The server drops every idle connection of this database (as an idle timeout or a restart would).
    admin = sqlalchemy.create_engine(pg_url, isolation_level="AUTOCOMMIT", poolclass=sqlalchemy.pool.NullPool)
    with admin.connect() as connection:
        killed = connection.execute(
            sqlalchemy.text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ).scalar()
    admin.dispose()
    assert killed >= 1
    storage.set_study_user_attr(study_id, "after_drop", 1)
    assert storage.get_study_user_attrs(study_id) == {"after_drop": 1}


# --- what a storage holds ---------------------------------------------------------------------------


def test_list_studies_counts_states_and_best_value(storage_url: str) -> None:
    _add_trials(storage_url, "b-study", [0.7, 0.9, None])
    _add_trials(storage_url, "a-study", [0.3], direction="minimize")
    rows = list_studies(storage_url)
    assert [r.name for r in rows] == ["a-study", "b-study"]
    assert (rows[1].n_complete, rows[1].n_pruned, rows[1].n_failed, rows[1].n_running) == (2, 1, 0, 0)
    assert rows[1].best_value == pytest.approx(0.9)
    assert rows[0].best_value == pytest.approx(0.3)


def test_best_trials_are_sorted_best_first(sqlite_url: str) -> None:
    _add_trials(sqlite_url, "s", [0.7, 0.9, None, 0.8])
    assert [t.values[0] for t in best_trials(sqlite_url, "s", top=2)] == [pytest.approx(0.9), pytest.approx(0.8)]


def test_load_study_names_the_studies_there(sqlite_url: str) -> None:
    _add_trials(sqlite_url, "present", [0.5])
    assert load_study(sqlite_url, "present").study_name == "present"
    with pytest.raises(StorageError, match=r"has no study 'absent'; it holds: present"):
        load_study(sqlite_url, "absent")


CLAIMING_WORKER = """
import pathlib, sys, time
import optuna
from search.storage.studies import open_storage

url, ready, go = sys.argv[1], pathlib.Path(sys.argv[2]), pathlib.Path(sys.argv[3])
optuna.logging.set_verbosity(optuna.logging.ERROR)
study = optuna.load_study(study_name="race", storage=open_storage(url))
ready.touch()
while not go.exists():  # all workers claim at once
    time.sleep(0.001)
study.optimize(lambda trial: trial.suggest_int("x", 0, 99), n_trials=10)
"""


@pytest.mark.e2e  # starts worker processes
def test_workers_never_claim_the_same_enqueued_trial_on_sqlite(tmp_path: Path) -> None:
    """Four processes pop 40 enqueued starting points at once: each runs exactly once, no worker crashes."""
    url = f"sqlite:///{tmp_path / 'race.db'}"
    study = optuna.create_study(study_name="race", storage=open_storage(url), direction="maximize")
    for x in range(40):
        study.enqueue_trial({"x": x})
    go = tmp_path / "go"
    ready = [tmp_path / f"ready-{i}" for i in range(4)]
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", CLAIMING_WORKER, url, str(path), str(go)], stderr=subprocess.PIPE, text=True
        )
        for path in ready
    ]
    deadline = time.monotonic() + 120
    while not all(path.exists() for path in ready):  # every worker has imported and opened the storage
        assert time.monotonic() < deadline and all(w.poll() is None for w in workers), "a worker did not get ready"
        time.sleep(0.05)
    go.touch()
    errors = [worker.communicate(timeout=120)[1] for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0, 0, 0], errors
    trials = optuna.load_study(study_name="race", storage=url).get_trials(deepcopy=False)
    assert sorted(t.params["x"] for t in trials) == list(range(40))
    assert {t.state for t in trials} == {optuna.trial.TrialState.COMPLETE}


# --- passwords, outages, reading commands -----------------------------------------------------------


@pytest.mark.parametrize("password", ["pa/ss9", "p@ss", "a:b", "50%off", "x#y", "a/@:%#b"])
def test_mask_url_hides_passwords_with_url_syntax_in_them(password: str) -> None:
    encoded = urllib.parse.quote(password, safe="")
    masked = mask_url(f"postgresql+psycopg://search:{encoded}@db:5432/x")
    assert masked == "postgresql+psycopg://search:***@db:5432/x"
    raw = mask_url(f"postgresql+psycopg://search:{password}@db:5432/x")  # not encoded, as a user may type it
    assert password not in raw and encoded not in raw and "search:***@" in raw
    assert not {part for part in re.split(r"[/@:%#]", password) if len(part) > 1} & set(re.split(r"[/@:.]", raw))


def test_a_rollback_after_a_server_restart_is_transient() -> None:
    """What a PostgreSQL restart raises inside Optuna: StorageInternalError <- PendingRollbackError, whose
    OperationalError (AdminShutdown) is only the __context__ (the rollback failed while handling it)."""
    shutdown = sqlalchemy.exc.OperationalError(
        "SELECT 1", {}, Exception("terminating connection due to administrator command")
    )
    try:
        try:
            raise shutdown
        except sqlalchemy.exc.OperationalError:
            raise sqlalchemy.exc.PendingRollbackError("Can't reconnect until invalid transaction is rolled back.")  # noqa: B904
    except sqlalchemy.exc.PendingRollbackError as rollback:
        try:
            raise optuna.exceptions.StorageInternalError("An exception is raised during the commit.") from rollback
        except optuna.exceptions.StorageInternalError as error:
            wrapped = error
    assert wrapped.__cause__.__cause__ is None and wrapped.__cause__.__context__ is shutdown
    assert retrying_storage.is_transient(wrapped)


@pytest.mark.parametrize("value", [-1.0, float("nan")])
def test_a_negative_max_outage_is_refused(value: float) -> None:
    with pytest.raises(StorageError, match=r"--max-outage must be zero or a positive number of seconds, but got"):
        check_max_outage(value)


def test_reading_a_missing_sqlite_file_does_not_create_it(tmp_path: Path) -> None:
    path = tmp_path / "typo.db"
    with pytest.raises(StorageError, match=r"There is no SQLite storage at .*typo.db: the file does not exist"):
        load_study(f"sqlite:///{path}", "smoke")
    with pytest.raises(StorageError, match="the file does not exist"):
        list_studies(f"sqlite:///{path}")
    assert not path.exists()


def test_every_public_storage_method_is_retried_or_needs_no_database() -> None:
    """By construction: a method a later Optuna adds to RDBStorage is retried, or this test names it."""
    from optuna.storages import RDBStorage

    from search.storage.retrying import NO_DATABASE, RETRIED_INSIDE, RetryingRDBStorage, public_methods

    for name in public_methods(RDBStorage):
        method = getattr(RetryingRDBStorage, name)
        retried = getattr(method, "__wrapped__", None) is getattr(RDBStorage, name)
        overridden = name in RETRIED_INSIDE and method is not getattr(RDBStorage, name)
        assert retried or overridden or name in NO_DATABASE, f"RDBStorage.{name} is not retried"
    assert NO_DATABASE <= public_methods(RDBStorage) and RETRIED_INSIDE <= public_methods(RDBStorage)
