"""The run's shared counters: a counted run hands out exactly its tickets, a run bounded by its timeout
alone hands them out until the deadline, and either one names its outcomes."""

from __future__ import annotations

import multiprocessing
import time

import pytest
from optuna.trial import TrialState

from search.run.tickets import Outcomes, RunProgress, RunState


def _shared(n_trials: int | None, timeout: float | None = None) -> RunState:
    ctx = multiprocessing.get_context("spawn")
    return RunState(ctx, n_trials=n_trials, n_workers=1, best=None, maximize=True, timeout=timeout)


def test_a_counted_run_hands_out_its_tickets_and_takes_back_a_failed_ones():
    shared = _shared(2)
    assert shared.claim(0, None)
    shared.finish(0, TrialState.FAIL, None)  # the ticket is back
    assert shared.claim(0, None)
    shared.finish(0, TrialState.COMPLETE, 0.9)
    assert shared.claim(0, None)
    shared.finish(0, TrialState.PRUNED, None)
    assert not shared.claim(0, None)  # both tickets spent on finished trials
    assert shared.outcomes() == Outcomes(complete=1, pruned=1, failed=1)
    assert shared.progress(1.0).n_done == 2 and shared.best.value == 0.9


def test_a_run_without_a_count_claims_until_its_deadline():
    shared = _shared(None, timeout=60)
    for _ in range(5):  # any number of trials, failed or finished
        assert shared.claim(0, time.time() + 60)
        shared.finish(0, TrialState.FAIL, None)
    assert shared.claim(0, time.time() + 60)
    shared.finish(0, TrialState.COMPLETE, 0.8)
    assert not shared.claim(0, time.time() - 1)  # past the deadline: no more, and the run closes
    assert shared.closing.is_set()
    assert shared.outcomes() == Outcomes(complete=1, pruned=0, failed=5)
    progress = shared.progress(10.0)
    assert progress.n_trials is None and progress.timeout == 60


@pytest.mark.parametrize(
    ("progress", "left"),
    [
        (RunProgress(n_done=0, n_trials=10, n_running=1, best_value=None, elapsed=5.0), None),
        (RunProgress(n_done=2, n_trials=10, n_running=1, best_value=None, elapsed=20.0), 80.0),
        (RunProgress(n_done=2, n_trials=10, n_running=1, best_value=None, elapsed=20.0, timeout=50.0), 30.0),
        (RunProgress(n_done=0, n_trials=None, n_running=1, best_value=None, elapsed=20.0, timeout=50.0), 30.0),
        (RunProgress(n_done=9, n_trials=None, n_running=1, best_value=None, elapsed=70.0, timeout=50.0), 0.0),
    ],
)
def test_the_time_left_is_the_earlier_of_the_count_and_the_timeout(progress, left):
    assert progress.seconds_left == left
