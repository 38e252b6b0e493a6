"""One place turns `--storage` / `SEARCH_STORAGE` / the default into an Optuna storage.

SQLite (one machine): a busy timeout and WAL journal so several local worker processes share one file
without "database is locked". PostgreSQL (many machines): `pool_pre_ping` (Optuna only sets it for
MySQL) and TCP keepalives so long trials survive idle-connection drops, and a small pool per worker.
`grpc://host:port`: Optuna's gRPC proxy client, for clusters too large for PostgreSQL's connection limit.

Workers send heartbeats; a trial whose worker died is failed after the grace period and retried once
with the same parameters. A lost database connection is ridden out by search.storage.retrying. The
URL rules (which URL, masked for display, gRPC or not) live in search.storage.urls.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import sqlite3
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import optuna
import sqlalchemy
import sqlalchemy.event
import sqlalchemy.exc
from optuna.exceptions import ExperimentalWarning, StorageInternalError
from optuna.storages import BaseStorage, GrpcStorageProxy, RetryHeartbeatStaleTrialCallback
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from search.errors import StorageError, StorageMissing, one_line
from search.storage.retrying import (
    DEFAULT_MAX_OUTAGE,
    RetryingRDBStorage,
    is_transient,
    lost_table_race,
    outage_cause,
    retry_delay,
    root_cause,
)
from search.storage.urls import DEFAULT_STORAGE_URL, STORAGE_ENVVAR, is_grpc_url, mask_url, resolve_storage_url
from search.study.definition import StudyDefinition, stored_definition

__all__ = [
    "DEFAULT_STORAGE_URL",
    "STORAGE_ENVVAR",
    "StudyRow",
    "best_trials",
    "check_heartbeat",
    "check_max_outage",
    "created_definition",
    "is_grpc_url",
    "list_studies",
    "load_study",
    "mask_url",
    "maximizes",
    "open_storage",
    "rank_trials",
    "resolve_storage_url",
]

logger = logging.getLogger(__name__)

DEFAULT_HEARTBEAT_INTERVAL = 30.0  # seconds between a running trial's heartbeats
DEFAULT_GRACE_PERIOD = 90.0  # seconds without a heartbeat before a trial counts as dead
SQLITE_BUSY_TIMEOUT = 60.0  # seconds a SQLite writer waits for another process's lock
CONNECT_TIMEOUT = 10  # seconds to reach a database server
GRPC_READY_TIMEOUT = 10.0  # seconds to wait for a gRPC proxy to answer
_DRIVER_PACKAGES = {
    "mysql": "mysqlclient",
    "postgresql": "'psycopg[binary]'",
}  # what `pip install` brings a backend's driver


def open_storage(
    url: str | None = None,
    *,
    heartbeat_interval: float | None = None,
    grace_period: float | None = None,
    max_outage: float | None = None,
    rejoin: bool = False,
    reading: bool = False,
) -> BaseStorage:
    """An Optuna storage for `url` (resolved with `resolve_storage_url`), checked to be usable now.

    Once open, an operation that loses the connection is retried until the database answers again,
    for up to `max_outage` seconds (default DEFAULT_MAX_OUTAGE) counted from the first failure.
    With `rejoin` (a worker process of a run already going) opening it waits out an outage too.
    With `reading` (commands that only read) a SQLite file must exist already, and one this process
    cannot write is opened read-only.
    Raises StorageError (one line, password masked) for a malformed or unsupported URL, an unwritable
    SQLite path, an unreachable server, or a schema written by another Optuna version.
    """
    url = resolve_storage_url(url)
    interval, grace = check_heartbeat(heartbeat_interval, grace_period)
    outage = check_max_outage(max_outage)
    if is_grpc_url(url):
        return _open_grpc(url)
    parsed = _parse_db_url(url)
    read_only = False
    if parsed.get_backend_name() == "sqlite":
        read_only = _prepare_sqlite_file(url, parsed, reading=reading)
        if read_only:  # SQLite's URI form: opened for reading only; a WAL file in a read-only directory
            # cannot get its shared-memory file, so it is read as a snapshot (immutable)
            path = Path(parsed.database or "").resolve()
            options = "mode=ro" if os.access(path.parent, os.W_OK) else "mode=ro&immutable=1"
            parsed = parsed.set(database=f"file:{path}?{options}", query={"uri": "true"})
        engine_kwargs: dict[str, Any] = {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT}}
    elif parsed.get_backend_name() == "postgresql":
        engine_kwargs = {
            "pool_pre_ping": True,  # test a pooled connection before use: survives server-side idle drops
            "pool_size": 2,  # a worker uses two at once (main thread + heartbeat thread)
            "max_overflow": 4,
            "pool_recycle": 1800,
            "connect_args": {
                "connect_timeout": CONNECT_TIMEOUT,
                "keepalives": 1,
                "keepalives_idle": 60,
                "keepalives_interval": 10,
                "keepalives_count": 3,
            },
        }
    else:  # mysql: Optuna sets pool_pre_ping itself
        engine_kwargs = {"connect_args": {"connect_timeout": CONNECT_TIMEOUT}}
    started = time.monotonic()
    for attempt in itertools.count():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)  # heartbeat_interval is "experimental" in Optuna 5
            try:
                storage = RetryingRDBStorage(
                    parsed.render_as_string(hide_password=False),
                    engine_kwargs=engine_kwargs,
                    heartbeat_interval=interval,
                    grace_period=grace,
                    heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=1),
                )
                storage.max_outage = outage
                if parsed.get_backend_name() == "sqlite" and not read_only:
                    _serialise_sqlite_transactions(storage.engine)
                return storage
            except (sqlalchemy.exc.SQLAlchemyError, StorageInternalError) as error:
                # Workers opening a new database at once race to create Optuna's tables; the loser finds them made.
                if lost_table_race(error) and attempt < 2:
                    time.sleep(0.5 * (attempt + 1))
                    continue
                # A worker joining a run that is already going waits out an outage as the run's other calls do.
                delay = retry_delay(attempt)
                if rejoin and is_transient(error) and time.monotonic() + delay - started <= outage:
                    logger.warning("storage: %s; retrying in %.1f s", outage_cause(error), delay)
                    time.sleep(delay)
                    continue
                raise StorageError(f"Cannot reach the storage {mask_url(url)}: {root_cause(error)}") from error
            except RuntimeError as error:  # Optuna's table-schema version check
                raise StorageError(
                    f"The storage {mask_url(url)} was written by an incompatible Optuna version "
                    f"(this worker runs Optuna {optuna.__version__}): {one_line(error)}"
                ) from error
            except ImportError as error:  # e.g. mysql:// without its driver installed
                raise StorageError(
                    f"The storage {mask_url(url)} needs a database driver that is not installed ({root_cause(error)}); "
                    f"install it, e.g. `pip install {_DRIVER_PACKAGES.get(parsed.get_backend_name(), 'its driver')}`, "
                    "or use postgresql+psycopg://... or sqlite:///..."
                ) from error
    raise AssertionError("unreachable")


def _serialise_sqlite_transactions(engine: sqlalchemy.engine.Engine) -> None:
    """Make every SQLite transaction take the write lock when it begins (BEGIN IMMEDIATE).

    Optuna claims a waiting trial (an enqueued starting point, a retried trial) with SELECT ... FOR
    UPDATE, then marks it RUNNING; SQLite has no FOR UPDATE, and Python's sqlite3 starts a transaction
    only at the first write, so two workers could both read the trial as WAITING, both run it, and the
    second one's result was refused ("Cannot tell a COMPLETE trial"): the worker crashed. With the lock
    taken at BEGIN the claim is atomic; the busy timeout makes the other worker wait its turn.
    """

    @sqlalchemy.event.listens_for(engine, "connect")
    def _no_implicit_begin(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # sqlite3 emits no BEGIN of its own; the hook below does

    @sqlalchemy.event.listens_for(engine, "begin")
    def _begin_immediate(connection: sqlalchemy.engine.Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    engine.dispose()  # connections made while Optuna created its tables predate the hooks


def check_heartbeat(heartbeat_interval: float | None, grace_period: float | None) -> tuple[float, float]:
    """The (interval, grace period) to use, defaults filled in; a grace period must exceed two intervals."""
    interval = DEFAULT_HEARTBEAT_INTERVAL if heartbeat_interval is None else float(heartbeat_interval)
    grace = max(DEFAULT_GRACE_PERIOD, 3 * interval) if grace_period is None else float(grace_period)
    if interval <= 0:
        raise StorageError(f"The heartbeat interval must be a positive number of seconds, but got {interval:g}.")
    if grace <= 2 * interval:
        raise StorageError(
            f"The grace period must be more than twice the heartbeat interval, or live trials get failed "
            f"between two heartbeats, but got grace period {grace:g} s and heartbeat interval {interval:g} s; "
            f"use e.g. --heartbeat-interval {interval:g} --grace-period {3 * interval:g}."
        )
    return interval, grace


def check_max_outage(max_outage: float | None) -> float:
    """The seconds a lost connection is retried, default filled in; zero gives up at the first failure."""
    outage = DEFAULT_MAX_OUTAGE if max_outage is None else float(max_outage)
    if not outage >= 0:  # also refuses NaN
        raise StorageError(f"--max-outage must be zero or a positive number of seconds, but got {outage:g}.")
    return outage


def _parse_db_url(url: str) -> sqlalchemy.engine.URL:
    try:
        parsed = sqlalchemy.engine.make_url(url)
    except (sqlalchemy.exc.ArgumentError, ValueError) as error:
        raise StorageError(
            f"Malformed storage URL {mask_url(url)!r}: expected e.g. {DEFAULT_STORAGE_URL}, "
            "postgresql+psycopg://user:password@host:5432/db or grpc://host:port."
        ) from error
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "postgresql", "mysql"):
        raise StorageError(
            f"Unsupported storage URL {mask_url(url)!r} (backend {backend!r}); "
            "use sqlite:///FILE, postgresql+psycopg://user:password@host:port/db or grpc://host:port."
        )
    if parsed.drivername == "postgresql":  # SQLAlchemy's default driver is psycopg2; we ship psycopg 3
        parsed = parsed.set(drivername="postgresql+psycopg")
    if backend != "sqlite" and not parsed.database:
        raise StorageError(f"The storage URL {mask_url(url)!r} names no database; add /DBNAME at its end.")
    return parsed


def _prepare_sqlite_file(url: str, parsed: sqlalchemy.engine.URL, *, reading: bool) -> bool:
    """Check the SQLite file can be written, and switch it to WAL (persistent: every later connection uses it).

    `reading`: the file must exist, and one that cannot be written is fine; returns True when it is to
    be opened read-only.
    """
    database = parsed.database or ""
    if database in ("", ":memory:") or database.startswith("file::memory:"):
        raise StorageError(
            f"The storage {mask_url(url)!r} is an in-memory SQLite database that other processes cannot share; "
            f"name a file, e.g. {DEFAULT_STORAGE_URL}."
        )
    path = Path(database).expanduser()
    directory = path.parent.resolve()
    if not directory.is_dir():
        raise StorageError(
            f"Cannot create the SQLite storage {path}: the directory {directory} does not exist. "
            "Create it first or choose another path."
        )
    if path.is_dir():
        raise StorageError(f"Cannot use the SQLite storage {path}: it is a directory; name a file inside it.")
    if reading and not path.exists():
        raise StorageMissing(
            f"There is no SQLite storage at {path}: the file does not exist. Check --storage (or ${STORAGE_ENVVAR}), "
            "or create it with `search run`."
        )
    if reading and os.access(path, os.R_OK) and not (os.access(path, os.W_OK) and os.access(directory, os.W_OK)):
        return True
    if not os.access(directory, os.W_OK) or (path.exists() and not os.access(path, os.R_OK | os.W_OK)):
        raise StorageError(f"Cannot write the SQLite storage {path}: permission denied; choose a writable path.")
    try:
        _use_wal(path)
    except sqlite3.Error as error:
        raise StorageError(f"Cannot open the SQLite storage {path}: {error}.") from error
    return False


def _use_wal(path: Path) -> None:
    """Switch the file to WAL unless it is already; retried while other processes hold it.

    The switch needs the file to itself, and SQLite answers "database is locked" at once, without
    waiting out the busy timeout, when it sees that waiting could deadlock (another process opening
    the same new file and creating Optuna's tables): so wait here, up to the same timeout.
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT
    while True:
        try:
            with contextlib.closing(sqlite3.connect(path, timeout=SQLITE_BUSY_TIMEOUT)) as connection:
                if connection.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                    connection.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _open_grpc(url: str) -> GrpcStorageProxy:
    parts = urlsplit(url)
    try:
        host, port = parts.hostname, parts.port
    except ValueError as error:
        raise StorageError(
            f"Malformed gRPC storage URL {mask_url(url)!r}: the port must be a number, as in grpc://host:13000."
        ) from error
    if not host or port is None or parts.path not in ("", "/"):
        raise StorageError(f"Malformed gRPC storage URL {mask_url(url)!r}: expected grpc://host:port.")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        proxy = GrpcStorageProxy(host=host, port=port)
    try:
        proxy.wait_server_ready(timeout=GRPC_READY_TIMEOUT)
    except ConnectionError as error:
        proxy.close()
        raise StorageError(
            f"No gRPC storage proxy answers at {host}:{port} within {GRPC_READY_TIMEOUT:g} s; "
            "start one with `search proxy --storage DATABASE_URL --port PORT`."
        ) from error
    return proxy


# ---------------------------------------------------------------------------------------------------
# What a storage holds, for `search studies` and `search show`.


@dataclass(frozen=True)
class StudyRow:
    """One study of a storage with its trial counts."""

    name: str
    n_complete: int
    n_pruned: int
    n_failed: int
    n_running: int
    best_value: float | None  # the first objective's best over complete trials


def list_studies(storage_url: str | None = None) -> list[StudyRow]:
    """Every study in the storage, by name, with trial counts by state and the best first-objective value."""
    storage = open_storage(storage_url, reading=True)
    rows = []
    for frozen in sorted(storage.get_all_studies(), key=lambda s: s.study_name):
        trials = storage.get_all_trials(storage.get_study_id_from_name(frozen.study_name), deepcopy=False)
        count = {state: sum(t.state == state for t in trials) for state in TrialState}
        complete = [t.values[0] for t in trials if t.state == TrialState.COMPLETE and t.values]
        pick = max if maximizes(frozen.directions) else min
        rows.append(
            StudyRow(
                name=frozen.study_name,
                n_complete=count[TrialState.COMPLETE],
                n_pruned=count[TrialState.PRUNED],
                n_failed=count[TrialState.FAIL],
                n_running=count[TrialState.RUNNING],
                best_value=pick(complete) if complete else None,
            )
        )
    return rows


def load_study(storage_url: str | None, study_name: str) -> optuna.Study:
    """An existing study of the storage; StorageError naming the studies there when it has none by that name."""
    storage = open_storage(storage_url, reading=True)
    names = sorted(s.study_name for s in storage.get_all_studies())
    if study_name not in names:
        raise StorageError(
            f"The storage {mask_url(resolve_storage_url(storage_url))} has no study {study_name!r}; "
            f"it holds: {', '.join(names) or 'no studies'}. Run `search run --study {study_name}` first."
        )
    return optuna.load_study(study_name=study_name, storage=storage)


def created_definition(storage_url: str | None, study_name: str) -> StudyDefinition:
    """The definition a stored study was created from (its overrides included), so a study whose TOML was
    edited since can still be resumed as it was made."""
    definition = stored_definition(load_study(storage_url, study_name).user_attrs)
    if definition is None:
        raise StorageError(
            f"The study {study_name!r} in {mask_url(resolve_storage_url(storage_url))} does not hold the "
            "definition it was created from (an older version of search made it); resume it from its TOML."
        )
    return definition


def best_trials(storage_url: str | None, study_name: str, *, top: int = 10) -> list[FrozenTrial]:
    """The `top` best complete trials of the study in the storage (see `rank_trials`)."""
    return rank_trials(load_study(storage_url, study_name), top=top)


def rank_trials(study: optuna.Study, *, top: int = 10) -> list[FrozenTrial]:
    """The `top` best complete trials, best first (for two objectives: the Pareto front, best first objective first)."""
    if len(study.directions) > 1:
        trials = list(study.best_trials)
    else:
        trials = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.values]
    return sorted(trials, key=lambda t: t.values[0], reverse=maximizes(study.directions))[:top]


def maximizes(directions: Sequence[StudyDirection]) -> bool:
    """Whether the first objective (the cross-validation accuracy) is maximised: which way "best" points."""
    return directions[0] == StudyDirection.MAXIMIZE
