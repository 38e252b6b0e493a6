"""Recovery of a run's trials whose worker is gone: failed at once and retried once, as a stale heartbeat
would have them, instead of waiting for the heartbeat (or the lease behind the gRPC proxy) to go stale."""

from __future__ import annotations

import logging
import socket

import optuna
import psutil
from optuna.trial import FrozenTrial, TrialState

from search.run.tickets import RunState
from search.storage.handles import storage_of, trial_id
from search.storage.leases import fail_and_retry
from search.storage.retrying import trial_worker

logger = logging.getLogger(__name__)


def retry_abandoned(study: optuna.Study, shared: RunState, worker: int, why: str, *, pid: int | None = None) -> None:
    """A worker died holding a ticket: fail its trial now and queue the retry, as a stale heartbeat would.

    The study, not the worker's last word, says what became of the ticket. The worker may have died
    after its trial started running (with `pid` recorded, see retrying_storage.worker_identity) but
    before it told `shared` the trial's id, or after the trial's end was recorded but before it
    counted it: a finished trial counts, a running one is failed and its ticket given back.
    """
    claimed, held_id = shared.held(worker)
    if not claimed:
        return
    trial = _abandoned_trial(study, held_id, pid)
    if trial is not None and trial.state == TrialState.RUNNING:
        fail_and_retry(study, trial_id(trial), why, retry=not shared.stop.is_set())
        trial = storage_of(study).get_trial(trial_id(trial))
    if trial is None:
        shared.release_dead_worker(worker, None, None)
    else:
        value = trial.values[0] if trial.state == TrialState.COMPLETE and trial.values else None
        shared.release_dead_worker(worker, trial.state, value)


def _abandoned_trial(study: optuna.Study, abandoned_id: int, pid: int | None) -> FrozenTrial | None:
    """The trial a dead worker ran: by the id it reported, else the running trial its process started."""
    if abandoned_id != -1:
        return storage_of(study).get_trial(abandoned_id)
    if pid is None:
        return None
    host = socket.gethostname()
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if trial_worker(trial) == (host, pid):
            return trial
    return None


def fail_dead_trials(study: optuna.Study) -> None:
    """Fail and retry at once the RUNNING trials whose worker process on this host is gone (a `kill -9`'d
    run), instead of waiting for their heartbeats to go stale. A trial of another host, or whose PID is
    alive (its worker, or a process that reused the PID), is left to the heartbeats."""
    host = socket.gethostname()
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker_host, pid = trial_worker(trial)
        if worker_host == host and pid is not None and not psutil.pid_exists(pid):
            fail_and_retry(study, trial_id(trial), f"its worker process {pid} on {host} is gone", retry=True)


def fail_leftovers(study: optuna.Study, shared: RunState) -> None:
    """Fail any trial this run's workers left RUNNING (a second Ctrl-C, a crash): nothing stays RUNNING."""
    for worker in range(len(shared.current)):
        retry_abandoned(study, shared, worker, "the run stopped during this trial")
