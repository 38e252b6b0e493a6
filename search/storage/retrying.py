"""Optuna's RDBStorage made to ride out a lost database connection, and to record who runs each trial.

A lost connection (a restart, a failover) or a busy SQLite file is retried with backoff for up to
`max_outage` seconds, then reported as one `StorageOutage`; writes that may have landed before the
connection dropped are checked, not repeated. Every trial this process starts or claims records its
worker (`worker_identity`), so a run on the same host fails at once a trial whose process is gone.
"""

from __future__ import annotations

import functools
import inspect
import itertools
import logging
import os
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import optuna
import sqlalchemy
import sqlalchemy.exc
from optuna.exceptions import StorageInternalError, UpdateFinishedTrialError
from optuna.storages import RDBStorage
from optuna.trial import FrozenTrial, TrialState

from search.errors import StorageError, StorageOutage, one_line
from search.storage.urls import mask_url
from search.study.record import TrialRecord

logger = logging.getLogger("search.storage.studies")  # the storage's records, under the name users and log filters know

DEFAULT_MAX_OUTAGE = 120.0  # seconds a lost database connection is retried before the operation gives up
RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0)  # backoff between the first attempts after a lost connection ...
MAX_RETRY_DELAY = 5.0  # ... then one attempt every 5 s until the outage is over or lasts too long

_T = TypeVar("_T")


def retry_delay(attempt: int) -> float:
    """Seconds to wait before retrying after the `attempt`-th failure (0-based) of an outage."""
    return RETRY_DELAYS[attempt] if attempt < len(RETRY_DELAYS) else MAX_RETRY_DELAY


def worker_identity() -> dict[str, Any]:
    """The user attrs that say which process runs a trial, written when it starts running (by the storage
    `open_storage` returns): a run on the same host fails at once a trial whose process is gone."""
    return TrialRecord(worker_host=socket.gethostname(), worker_pid=os.getpid()).to_user_attrs()


def trial_worker(trial: FrozenTrial) -> tuple[str | None, int | None]:
    """(host, pid) of the process that runs `trial`, as `worker_identity` recorded them; None when unknown."""
    record = TrialRecord.from_trial(trial)
    return record.worker_host, record.worker_pid if isinstance(record.worker_pid, int) else None


def _chain(error: BaseException) -> Iterator[BaseException]:
    """`error` and the exceptions behind it, through `raise ... from` (__cause__) and raises inside
    `except` blocks (__context__): Optuna's StorageInternalError <- PendingRollbackError has the
    OperationalError of a server restart only as the context of the rollback that failed."""
    seen: set[int] = set()
    pending = [error]
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        pending += [e for e in (current.__cause__, current.__context__) if e is not None]


def root_cause(error: BaseException) -> str:
    while error.__cause__ is not None:
        error = error.__cause__
    if isinstance(error, sqlalchemy.exc.DBAPIError) and error.orig is not None:
        error = error.orig
    return one_line(error)


def lost_table_race(error: BaseException) -> bool:
    """Another process created a table or type of Optuna's schema between our check and our CREATE."""
    return isinstance(error, sqlalchemy.exc.IntegrityError) or "already exists" in root_cause(error)


def is_transient(error: BaseException) -> bool:
    """A dropped connection, an unreachable server or a busy SQLite file: worth trying again."""
    for seen in _chain(error):
        if isinstance(seen, (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError)):
            return True
        if isinstance(seen, sqlalchemy.exc.DBAPIError) and seen.connection_invalidated:
            return True
    return False


def outage_cause(error: BaseException) -> str:
    """The database's own words for a lost connection (the OperationalError deep in the chain), one line."""
    for seen in _chain(error):
        if isinstance(seen, sqlalchemy.exc.DBAPIError):
            return one_line(seen.orig if seen.orig is not None else seen)
    return root_cause(error)


def _with_retry(method: Callable[..., _T], *, limit: Callable[[RetryingRDBStorage], float]) -> Callable[..., _T]:
    """`method` retried after a lost connection while the outage lasts less than `limit(storage)` seconds.

    The outage is the storage's, not the call's: it starts at the first failure of any call and ends
    at the next success, so the calls that follow a failed one (Optuna failing the trial, reading it
    back) give up at once instead of each waiting out another `max_outage`.
    """
    name = method.__name__

    @functools.wraps(method)
    def retrying(self: RetryingRDBStorage, *args: Any, **kwargs: Any) -> _T:
        for attempt in itertools.count():
            try:
                result = method(self, *args, **kwargs)
            except UpdateFinishedTrialError:
                # A state write whose commit landed before the connection dropped: done, not repeated.
                if attempt > 0 and name == "set_trial_state_values" and self._landed(*args, **kwargs):
                    return True  # type: ignore[return-value]
                raise
            except (sqlalchemy.exc.SQLAlchemyError, StorageInternalError) as error:
                if not is_transient(error):
                    raise
                now = time.monotonic()
                if self.down_since is None:
                    self.down_since = now
                delay = retry_delay(attempt)
                if now + delay - self.down_since > limit(self):
                    raise StorageOutage(
                        f"Lost the connection to the storage {mask_url(self.url)} ({outage_cause(error)}); gave up after "
                        f"{attempt + 1} attempts over {now - self.down_since:.0f} s (--max-outage {self.max_outage:g}). "
                        "Finished trials are safe in the database: check that it runs, then run the command again."
                    ) from error
                logger.warning(
                    "storage %s: %s (%s); retrying in %.1f s", name, outage_cause(error), type(error).__name__, delay
                )
                self.scoped_session.remove()  # drop the broken session; the pool reconnects (pre-ping)
                time.sleep(delay)
            else:
                self.down_since = None
                return result
        raise AssertionError("unreachable")

    return retrying


class RetryingRDBStorage(RDBStorage):
    """Optuna's RDBStorage whose operations survive a dropped connection or a busy SQLite file."""

    max_outage: float = DEFAULT_MAX_OUTAGE  # seconds an outage is ridden out (set by open_storage)
    down_since: float | None = None  # time.monotonic() of the first failure of the current outage

    def record_heartbeat(self, trial_id: int) -> None:
        # Runs in Optuna's heartbeat thread: an error there would kill the thread with a traceback and
        # the trial would go stale while it still trains. A missed beat is logged; the next one tries again
        # (retried for one interval only: the trial waits for this thread when it ends).
        try:
            _retrying_heartbeat(self, trial_id)
        except StorageError as error:
            logger.warning("heartbeat of trial id %d not recorded: %s", trial_id, error)

    def _create_new_trial(self, study_id: int, template_trial: FrozenTrial | None = None) -> FrozenTrial:
        if template_trial is None:  # a trial this process runs from now: who runs it is written with it, atomically
            template_trial = optuna.trial.create_trial(state=TrialState.RUNNING, user_attrs=worker_identity())
        return _retrying_create_trial(self, study_id, template_trial)

    def set_trial_state_values(self, trial_id: int, state: TrialState, values: Any = None) -> bool:
        changed = _retrying_set_state(self, trial_id, state, values)
        if (
            changed and state == TrialState.RUNNING
        ):  # a waiting trial (a retry, a starting point) claimed by this process
            for key, value in worker_identity().items():
                self.set_trial_user_attr(trial_id, key, value)
        return changed

    def _landed(self, trial_id: int, state: TrialState, values: Any = None) -> bool:
        trial: FrozenTrial = RDBStorage.get_trial(self, trial_id)
        return trial.state == state and (values is None or list(trial.values or []) == list(values))


# Every public method of Optuna's RDBStorage is retried, found by construction (a method a later Optuna
# adds is retried too; tests/unit/search/storage/test_storage.py fails on one left out), but for those
# that never query the database and the two overridden above, which retry inside. The private methods
# public ones and Optuna's caching wrapper call directly are retried themselves.
NO_DATABASE = frozenset(
    {
        "check_trial_is_updatable",
        "get_failed_trial_callback",
        "get_heartbeat_interval",
        "get_heartbeat_stale_trial_callback",
        "remove_session",
    }
)
RETRIED_INSIDE = frozenset({"record_heartbeat", "set_trial_state_values"})
CALLED_DIRECTLY = ("_set_trial_param", "_get_trials", "_get_best_trial_id", "_get_stale_trial_ids")


def public_methods(cls: type) -> set[str]:
    return {name for name, value in inspect.getmembers(cls, callable) if not name.startswith("_")}


for _name in sorted(public_methods(RDBStorage) - NO_DATABASE - RETRIED_INSIDE) + list(CALLED_DIRECTLY):
    setattr(RetryingRDBStorage, _name, _with_retry(getattr(RDBStorage, _name), limit=lambda s: s.max_outage))
_retrying_create_trial = _with_retry(RDBStorage._create_new_trial, limit=lambda s: s.max_outage)
_retrying_set_state = _with_retry(RDBStorage.set_trial_state_values, limit=lambda s: s.max_outage)
_retrying_heartbeat = _with_retry(
    RDBStorage.record_heartbeat, limit=lambda s: min(s.max_outage, s.heartbeat_interval or 0.0)
)
