"""One place turns `--storage` / `SEARCH_STORAGE` / the default into an Optuna storage.

SQLite (one machine): a busy timeout and WAL journal so several local worker processes share one file
without "database is locked". PostgreSQL (many machines): `pool_pre_ping` (Optuna only sets it for
MySQL) and TCP keepalives so long trials survive idle-connection drops, and a small pool per worker.
`grpc://host:port`: Optuna's gRPC proxy client, for clusters too large for PostgreSQL's connection limit.

Workers send heartbeats; a trial whose worker died is failed after the grace period and retried once
with the same parameters. A lost database connection is retried with backoff, then reported as one
`StorageError`; writes that may have landed before the connection dropped are checked, not repeated.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import re
import sqlite3
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import optuna
import sqlalchemy
import sqlalchemy.event
import sqlalchemy.exc
from optuna.exceptions import ExperimentalWarning, StorageInternalError, UpdateFinishedTrialError
from optuna.storages import BaseStorage, GrpcStorageProxy, RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial, TrialState

from search.errors import StorageError

logger = logging.getLogger(__name__)

DEFAULT_STORAGE_URL = "sqlite:///search.db"
STORAGE_ENVVAR = "SEARCH_STORAGE"
DEFAULT_HEARTBEAT_INTERVAL = 30.0  # seconds between a running trial's heartbeats
DEFAULT_GRACE_PERIOD = 90.0  # seconds without a heartbeat before a trial counts as dead
SQLITE_BUSY_TIMEOUT = 60.0  # seconds a SQLite writer waits for another process's lock
CONNECT_TIMEOUT = 10  # seconds to reach a database server
RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0, 8.0)  # backoff between attempts after a lost connection (~15 s in all)
GRPC_READY_TIMEOUT = 10.0  # seconds to wait for a gRPC proxy to answer

_T = TypeVar("_T")


def resolve_storage_url(url: str | None) -> str:
    """The storage URL to use: the flag, else $SEARCH_STORAGE, else sqlite:///search.db in the cwd."""
    for candidate in (url, os.environ.get(STORAGE_ENVVAR)):
        if candidate is not None and candidate.strip():
            return candidate.strip()
    return DEFAULT_STORAGE_URL


def mask_url(url: str) -> str:
    """The URL with its password replaced by ***, fit to print and log."""
    return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", url)


def is_grpc_url(url: str) -> bool:
    return url.startswith("grpc://")


def open_storage(
    url: str | None = None,
    *,
    heartbeat_interval: float | None = None,
    grace_period: float | None = None,
) -> BaseStorage:
    """An Optuna storage for `url` (resolved with `resolve_storage_url`), checked to be usable now.

    Raises StorageError (one line, password masked) for a malformed or unsupported URL, an unwritable
    SQLite path, an unreachable server, or a schema written by another Optuna version.
    """
    url = resolve_storage_url(url)
    interval, grace = check_heartbeat(heartbeat_interval, grace_period)
    if is_grpc_url(url):
        return _open_grpc(url)
    parsed = _parse_db_url(url)
    if parsed.get_backend_name() == "sqlite":
        _prepare_sqlite_file(url, parsed)
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
    for attempt in range(3):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)  # heartbeat_interval is "experimental" in Optuna 5
            try:
                storage = _RetryingRDBStorage(
                    parsed.render_as_string(hide_password=False),
                    engine_kwargs=engine_kwargs,
                    heartbeat_interval=interval,
                    grace_period=grace,
                    heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=1),
                )
                if parsed.get_backend_name() == "sqlite":
                    _serialise_sqlite_transactions(storage.engine)
                return storage
            except (sqlalchemy.exc.SQLAlchemyError, StorageInternalError) as error:
                # Workers opening a new database at once race to create Optuna's tables; the loser finds them made.
                if _lost_table_race(error) and attempt < 2:
                    time.sleep(0.5 * (attempt + 1))
                    continue
                raise StorageError(f"Cannot reach the storage {mask_url(url)}: {_root_cause(error)}") from error
            except RuntimeError as error:  # Optuna's table-schema version check
                raise StorageError(
                    f"The storage {mask_url(url)} was written by an incompatible Optuna version "
                    f"(this worker runs Optuna {optuna.__version__}): {_one_line(error)}"
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


def _parse_db_url(url: str) -> sqlalchemy.engine.URL:
    try:
        parsed = sqlalchemy.engine.make_url(url)
    except (sqlalchemy.exc.ArgumentError, ValueError) as error:
        raise StorageError(
            f"Malformed storage URL {mask_url(url)!r}: expected e.g. sqlite:///search.db, "
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


def _prepare_sqlite_file(url: str, parsed: sqlalchemy.engine.URL) -> None:
    """Check the SQLite file can be written, and switch it to WAL (persistent: every later connection uses it)."""
    database = parsed.database or ""
    if database in ("", ":memory:") or database.startswith("file::memory:"):
        raise StorageError(
            f"The storage {url!r} is an in-memory SQLite database that other processes cannot share; "
            "name a file, e.g. sqlite:///search.db."
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
    if not os.access(directory, os.W_OK) or (path.exists() and not os.access(path, os.R_OK | os.W_OK)):
        raise StorageError(f"Cannot write the SQLite storage {path}: permission denied; choose a writable path.")
    try:
        _use_wal(path)
    except sqlite3.Error as error:
        raise StorageError(f"Cannot open the SQLite storage {path}: {error}.") from error


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
        raise StorageError(f"Malformed gRPC storage URL {url!r}: the port must be a number, as in grpc://host:13000.") from error
    if not host or port is None or parts.path not in ("", "/"):
        raise StorageError(f"Malformed gRPC storage URL {url!r}: expected grpc://host:port.")
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
# Retrying after a lost connection.


def _root_cause(error: BaseException) -> str:
    while error.__cause__ is not None:
        error = error.__cause__
    if isinstance(error, sqlalchemy.exc.DBAPIError) and error.orig is not None:
        error = error.orig
    return _one_line(error)


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def _lost_table_race(error: BaseException) -> bool:
    """Another process created a table or type of Optuna's schema between our check and our CREATE."""
    return isinstance(error, sqlalchemy.exc.IntegrityError) or "already exists" in _root_cause(error)


def _is_transient(error: BaseException) -> bool:
    """A dropped connection, an unreachable server or a busy SQLite file: worth trying again."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError)):
            return True
        if isinstance(seen, sqlalchemy.exc.DBAPIError) and seen.connection_invalidated:
            return True
        seen = seen.__cause__
    return False


def _with_retry(method: Callable[..., _T]) -> Callable[..., _T]:
    name = method.__name__

    @functools.wraps(method)
    def retrying(self: _RetryingRDBStorage, *args: Any, **kwargs: Any) -> _T:
        started = time.monotonic()
        for attempt in range(len(RETRY_DELAYS) + 1):
            try:
                return method(self, *args, **kwargs)
            except UpdateFinishedTrialError:
                # A state write whose commit landed before the connection dropped: done, not repeated.
                if attempt > 0 and name == "set_trial_state_values" and self._landed(*args, **kwargs):
                    return True  # type: ignore[return-value]
                raise
            except (sqlalchemy.exc.SQLAlchemyError, StorageInternalError) as error:
                if not _is_transient(error):
                    raise
                if attempt == len(RETRY_DELAYS):
                    raise StorageError(
                        f"Lost the connection to the storage {mask_url(self.url)} ({_root_cause(error)}); "
                        f"gave up after {attempt + 1} attempts over {time.monotonic() - started:.0f} s. "
                        "Finished trials are safe in the database: check that it runs, then run the command again."
                    ) from error
                delay = RETRY_DELAYS[attempt]
                logger.warning("storage %s: %s (%s); retrying in %.1f s", name, _root_cause(error), type(error).__name__, delay)
                self.scoped_session.remove()  # drop the broken session; the pool reconnects (pre-ping)
                time.sleep(delay)
        raise AssertionError("unreachable")

    return retrying


class _RetryingRDBStorage(RDBStorage):
    """Optuna's RDBStorage whose operations survive a dropped connection or a busy SQLite file."""

    def record_heartbeat(self, trial_id: int) -> None:
        # Runs in Optuna's heartbeat thread: an error there would kill the thread with a traceback and
        # the trial would go stale while it still trains. A missed beat is logged; the next one tries again.
        try:
            _retrying_heartbeat(self, trial_id)
        except StorageError as error:
            logger.warning("heartbeat of trial id %d not recorded: %s", trial_id, error)

    def _landed(self, trial_id: int, state: TrialState, values: Any = None) -> bool:
        trial: FrozenTrial = RDBStorage.get_trial(self, trial_id)
        return trial.state == state and (values is None or list(trial.values or []) == list(values))


# Every operation a study or Optuna's cache wrapper calls on the backend, reads and writes alike.
for _name in (
    "create_new_study", "delete_study", "set_study_user_attr", "set_study_system_attr",
    "get_study_id_from_name", "get_study_name_from_id", "get_study_directions", "get_study_user_attrs",
    "get_study_system_attrs", "get_trial_user_attrs", "get_trial_system_attrs", "get_all_studies",
    "_create_new_trial", "_set_trial_param", "get_trial_param", "set_trial_state_values",
    "set_trial_intermediate_value", "set_trial_user_attr", "set_trial_system_attr",
    "get_trial_id_from_study_id_trial_number", "get_trial", "_get_trials", "get_best_trial",
    "_get_best_trial_id", "_get_stale_trial_ids",
):  # fmt: skip
    setattr(_RetryingRDBStorage, _name, _with_retry(getattr(RDBStorage, _name)))
_retrying_heartbeat = _with_retry(RDBStorage.record_heartbeat)


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
    storage = open_storage(storage_url)
    rows = []
    for frozen in sorted(storage.get_all_studies(), key=lambda s: s.study_name):
        trials = storage.get_all_trials(frozen._study_id, deepcopy=False)
        count = {state: sum(t.state == state for t in trials) for state in TrialState}
        complete = [t.values[0] for t in trials if t.state == TrialState.COMPLETE and t.values]
        pick = max if frozen.directions[0] == optuna.study.StudyDirection.MAXIMIZE else min
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
    storage = open_storage(storage_url)
    names = sorted(s.study_name for s in storage.get_all_studies())
    if study_name not in names:
        raise StorageError(
            f"The storage {mask_url(resolve_storage_url(storage_url))} has no study {study_name!r}; "
            f"it holds: {', '.join(names) or 'no studies'}. Run `search run --study {study_name}` first."
        )
    return optuna.load_study(study_name=study_name, storage=storage)


def best_trials(storage_url: str | None, study_name: str, *, top: int = 10) -> list[FrozenTrial]:
    """The `top` best complete trials (for two objectives: the Pareto front, best first objective first)."""
    study = load_study(storage_url, study_name)
    if len(study.directions) > 1:
        trials = list(study.best_trials)
    else:
        trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    reverse = study.directions[0] == optuna.study.StudyDirection.MAXIMIZE
    return sorted(trials, key=lambda t: t.values[0], reverse=reverse)[:top]
