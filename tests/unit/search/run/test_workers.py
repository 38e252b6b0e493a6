"""What the parent makes of a worker that dies holding a ticket, at each moment it can die.

A worker takes a ticket, its trial starts running in the database, the worker says which trial it
trains, the trial's end is recorded, the worker counts it. A `kill -9` can land between any two of
these; whatever the moment, the run must still add exactly the trials it was asked for.
"""

from __future__ import annotations

import multiprocessing
import socket
import subprocess
import threading

import optuna
import pytest
from optuna.trial import TrialState

from search.run.recovery import retry_abandoned
from search.run.runner import prepare_study
from search.run.tickets import Outcomes, RunState
from search.storage.studies import open_storage
from search.study.loader import load_definition
from search.study.record import TrialRecord

SMOKE = load_definition("smoke")
PARAMS = {"lr": 0.01}
DISTRIBUTIONS = {"lr": optuna.distributions.FloatDistribution(1e-4, 1.0, log=True)}


def _gone_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()  # its PID now names no process
    return process.pid


def _study(url: str) -> optuna.Study:
    storage = open_storage(url)  # with heartbeats, so a failed trial gets its retry queued
    return prepare_study(storage, SMOKE)


def _shared(n_trials: int = 3) -> RunState:
    return RunState(multiprocessing.get_context("spawn"), n_trials=n_trials, n_workers=2, best=None, maximize=True)


def _add(url: str, study: optuna.Study, state: TrialState, pid: int, value: float | None = None) -> int:
    identity = TrialRecord(worker_host=socket.gethostname(), worker_pid=pid).to_user_attrs()
    study.add_trial(
        optuna.trial.create_trial(
            state=state, params=PARAMS, distributions=DISTRIBUTIONS, user_attrs=identity, value=value
        )
    )
    storage = open_storage(url)  # the storage's id of the trial: the id a worker names its trial by (RunState.current)
    study_id = storage.get_study_id_from_name(study.study_name)
    return storage.get_trial_id_from_study_id_trial_number(study_id, study.get_trials(deepcopy=False)[-1].number)


def _trial(url: str, trial_id: int) -> optuna.trial.FrozenTrial:
    return open_storage(url).get_trial(trial_id)


def _waiting(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return study.get_trials(deepcopy=False, states=(TrialState.WAITING,))


def test_a_worker_killed_before_it_named_its_running_trial_has_that_trial_found_and_retried(sqlite_url: str) -> None:
    study, shared, pid = _study(sqlite_url), _shared(), _gone_pid()
    queued = len(_waiting(study))  # the definition's starting points
    assert shared.claim(0, None)
    trial_id = _add(sqlite_url, study, TrialState.RUNNING, pid)  # running in the database, not yet in shared.current

    retry_abandoned(study, shared, 0, "its worker exited with code -9", pid=pid)

    trial = _trial(sqlite_url, trial_id)
    assert trial.state == TrialState.FAIL
    assert TrialRecord.from_trial(trial).failure_reason == "abandoned: its worker exited with code -9"
    assert len(_waiting(study)) == queued + 1 and _waiting(study)[-1].params == PARAMS  # its retry
    assert (shared.tickets.value, shared.outcomes()) == (
        3,
        Outcomes(complete=0, pruned=0, failed=1),
    )  # the ticket is back


def test_a_worker_killed_after_its_trial_was_recorded_complete_counts_it(sqlite_url: str) -> None:
    study, shared, pid = _study(sqlite_url), _shared(), _gone_pid()
    queued = len(_waiting(study))  # the definition's starting points
    assert shared.claim(1, None)
    trial_id = _add(sqlite_url, study, TrialState.COMPLETE, pid, value=0.875)
    shared.current[1] = trial_id  # it said so, then died before counting the trial

    retry_abandoned(study, shared, 1, "its worker exited with code -9", pid=pid)

    assert _trial(sqlite_url, trial_id).state == TrialState.COMPLETE
    assert len(_waiting(study)) == queued  # nothing to retry
    assert (shared.tickets.value, shared.outcomes(), shared.best.value) == (2, Outcomes(1, 0, 0), 0.875)
    assert shared.progress(0.0).n_running == 0


def test_a_worker_killed_before_its_trial_started_gives_its_ticket_back(sqlite_url: str) -> None:
    study, shared = _study(sqlite_url), _shared()
    other = _add(sqlite_url, study, TrialState.RUNNING, _gone_pid())  # another process's trial is not this worker's
    assert shared.claim(0, None)

    retry_abandoned(study, shared, 0, "its worker exited with code -9", pid=_gone_pid())

    assert _trial(sqlite_url, other).state == TrialState.RUNNING
    assert (shared.tickets.value, shared.outcomes()) == (3, Outcomes(0, 0, 0))


@pytest.mark.parametrize("calls", [1, 3])
def test_a_worker_that_held_no_ticket_changes_nothing_however_often_it_is_seen_dead(
    sqlite_url: str, calls: int
) -> None:
    study, shared, pid = _study(sqlite_url), _shared(), _gone_pid()
    assert shared.claim(0, None)
    trial_id = _add(sqlite_url, study, TrialState.RUNNING, pid)
    shared.current[0] = trial_id
    for _ in range(calls):  # the parent sees a dead worker on every poll until the run ends
        retry_abandoned(study, shared, 0, "its worker exited with code -9", pid=pid)
    retry_abandoned(study, shared, 1, "its worker exited with code 0", pid=pid)  # the other worker held none

    assert (shared.tickets.value, shared.outcomes()) == (3, Outcomes(complete=0, pruned=0, failed=1))
    assert _trial(sqlite_url, trial_id).state == TrialState.FAIL


def _claim_in_a_thread(shared: RunState, worker: int) -> tuple[threading.Thread, list[bool]]:
    answer: list[bool] = []
    thread = threading.Thread(target=lambda: answer.append(shared.claim(worker, None)))
    thread.start()
    return thread, answer


def test_a_worker_without_a_ticket_waits_while_another_trial_may_still_give_one_back(sqlite_url: str) -> None:
    study, shared, pid = _study(sqlite_url), _shared(n_trials=1), _gone_pid()
    assert shared.claim(0, None)  # the last ticket
    trial_id = _add(sqlite_url, study, TrialState.RUNNING, pid)
    waiting, answer = _claim_in_a_thread(shared, 1)
    waiting.join(timeout=1.0)
    assert waiting.is_alive() and answer == []  # not gone: worker 0's trial is still open

    retry_abandoned(study, shared, 0, "its worker exited with code -9", pid=pid)  # worker 0 died

    waiting.join(timeout=5.0)
    assert answer == [True]  # it took the ticket back and runs the retry
    assert _trial(sqlite_url, trial_id).state == TrialState.FAIL


def test_a_worker_without_a_ticket_ends_once_the_last_open_trial_finishes() -> None:
    shared = _shared(n_trials=1)
    assert shared.claim(0, None)
    waiting, answer = _claim_in_a_thread(shared, 1)
    waiting.join(timeout=0.5)
    assert waiting.is_alive()

    shared.finish(0, TrialState.COMPLETE, 0.9)

    waiting.join(timeout=5.0)
    assert answer == [False] and not shared.claim(0, None)  # the run is done: nobody waits any more
