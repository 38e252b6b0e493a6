"""Trial leases: the heartbeat of a worker behind the gRPC proxy, through storage calls the proxy carries.

Optuna's heartbeats need a storage that implements them, and its gRPC proxy client does not. So a
worker behind the proxy renews a lease instead: a trial system attribute holding the time of its last
renewal, written every heartbeat interval while the trial runs. Any run (before each trial) and the
proxy itself (every interval) fail a RUNNING trial whose lease is older than the grace period and queue
its parameters again once, the rule Optuna applies to a stale heartbeat on the direct path.
"""

from __future__ import annotations

import logging
import threading
import time
import warnings

import optuna
from optuna.exceptions import ExperimentalWarning
from optuna.storages import BaseStorage, RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState

from search.storage.handles import storage_of, trial_id
from search.study.record import TrialRecord

__all__ = ["LEASE_ATTR", "LeaseKeeper", "fail_and_retry", "fail_expired_leases", "has_heartbeat"]

logger = logging.getLogger(__name__)

LEASE_ATTR = "search:lease"  # trial system attr: time.time() of the running trial's last renewal


def has_heartbeat(storage: BaseStorage) -> bool:
    """Whether Optuna's own heartbeat guards this storage's trials (a direct database with an interval)."""
    interval = getattr(storage, "get_heartbeat_interval", lambda: None)()
    return interval is not None


class LeaseKeeper:
    """Renews the lease of the trial this worker runs (`trial_id`, set when a trial starts) every `interval`
    seconds, from a thread, for as long as the context lasts."""

    def __init__(self, storage: BaseStorage, interval: float) -> None:
        self.storage = storage
        self.interval = interval
        self.trial_id: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew_until_stopped, name="trial-lease", daemon=True)

    def start(self, trial_id: int) -> None:
        """A trial starts: its lease is written now, then renewed."""
        self.trial_id = trial_id
        self._renew()

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _renew_until_stopped(self) -> None:
        while not self._stop.wait(self.interval):
            self._renew()

    def _renew(self) -> None:
        trial_id = self.trial_id
        if trial_id is None:
            return
        try:
            self.storage.set_trial_system_attr(trial_id, LEASE_ATTR, time.time())
        except optuna.exceptions.UpdateFinishedTrialError:  # it has ended meanwhile
            pass
        except Exception as error:  # the proxy unreachable for a moment: the next renewal tries again
            logger.warning("could not renew the lease of trial id %d: %s", trial_id, error)


def fail_expired_leases(study: optuna.Study, grace: float) -> list[int]:
    """Fail, and retry once, every RUNNING trial whose lease is older than `grace` seconds; their numbers."""
    now = time.time()
    failed = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        renewed = trial.system_attrs.get(LEASE_ATTR)
        if isinstance(renewed, (int, float)) and now - renewed > grace:
            why = f"its lease was last renewed {now - renewed:.0f} s ago (grace period {grace:g} s)"
            if fail_and_retry(study, trial_id(trial), why, retry=True):
                failed.append(trial.number)
    return failed


def fail_and_retry(study: optuna.Study, trial_id: int, why: str, *, retry: bool) -> bool:
    """Fail a RUNNING trial whose worker is gone and, with `retry`, queue its parameters again once (the callback
    Optuna's heartbeat uses for a stale trial, on every path). False when another process was first."""
    storage = storage_of(study)
    try:
        if storage.get_trial(trial_id).state != TrialState.RUNNING:
            return False
        for key, value in TrialRecord(failure_reason=f"abandoned: {why}").to_user_attrs().items():
            storage.set_trial_user_attr(trial_id, key, value)
        if not storage.set_trial_state_values(trial_id, TrialState.FAIL):
            return False
    except optuna.exceptions.UpdateFinishedTrialError:  # another worker's check was first
        return False
    logger.warning("trial id %d failed: %s", trial_id, why)
    if retry:
        with warnings.catch_warnings():  # "experimental" in Optuna 5: the same callback its heartbeat uses
            warnings.simplefilter("ignore", ExperimentalWarning)
            RetryHeartbeatStaleTrialCallback(max_retry=1)(study, storage.get_trial(trial_id))
    return True
