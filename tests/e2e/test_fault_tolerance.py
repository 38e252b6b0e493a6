"""Workers die, databases vanish: the study keeps going and loses nothing.

Real `search run` subprocesses on a real SQLite file and on the real PostgreSQL started by .ci/run
(SEARCH_TEST_PG_URL; conftest's `storage_url` / `pg_url` give each test a fresh database). The smoke
study, one thread per worker.
"""

from __future__ import annotations

import signal
import subprocess
import time

import optuna
import pytest
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial, TrialState
from processes import SEARCH, kill_alone

HEARTBEAT, GRACE = 1, 3  # seconds: short, so a dead worker's trial goes stale quickly
N_TRIALS = 3
EPOCHS = 30  # smoke trials of ~1 s, not ~0.1 s: a worker is killed in the trial seen running, not the next one
pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")  # the retry helpers


def _run_args(storage: str, n_trials: int) -> list[str]:
    return [
        "run",
        "--study",
        "smoke",
        "--trials",
        str(n_trials),
        "--workers",
        "1",
        "--threads",
        "1",
        "--epochs",
        str(EPOCHS),
        "--heartbeat-interval",
        str(HEARTBEAT),
        "--grace-period",
        str(GRACE),
        "--storage",
        storage,
    ]  # fmt: skip (an argv: each option beside its value)


def _trials(storage: str) -> list[FrozenTrial]:
    return optuna.load_study(study_name="smoke", storage=storage).get_trials(deepcopy=False)


def _wait_for_running_trial(storage: str, worker: subprocess.Popen, timeout: float = 120.0) -> FrozenTrial:
    """The first trial once it is RUNNING and has reported its first epoch: the worker is mid-training."""
    import sqlalchemy

    # Plain SQL until the worker has created the schema and the study: Optuna's storage would create
    # the tables itself, racing the worker.
    engine = sqlalchemy.create_engine(storage, poolclass=sqlalchemy.pool.NullPool)
    query = sqlalchemy.text("SELECT 1 FROM studies WHERE study_name = 'smoke'")
    study = None
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            assert worker.poll() is None, f"the worker exited early ({worker.returncode}): {worker.communicate()}"
            if study is None:
                try:
                    with engine.connect() as connection:
                        if connection.execute(query).first() is not None:
                            study = optuna.load_study(study_name="smoke", storage=storage)
                except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.ProgrammingError):
                    pass  # no tables yet (SQLite, PostgreSQL)
            else:
                running = [
                    t
                    for t in study.get_trials(deepcopy=False)
                    if t.state == TrialState.RUNNING and t.intermediate_values
                ]
                if running:
                    return running[0]
            time.sleep(0.05)
    finally:
        engine.dispose()
    raise AssertionError(f"no trial started within {timeout:g} s")


def test_killed_worker_trial_is_failed_and_retried(storage_url: str, run_search) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    first = subprocess.Popen(
        [SEARCH, *_run_args(storage_url, N_TRIALS)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        killed = _wait_for_running_trial(storage_url, first)
        # No clean-up at all, as if the machine was lost; below it, the fork server and the worker it forked.
        workers, survivors = kill_alone(first, timeout=10)
        assert len(workers) >= 2 and not survivors, (workers, "a worker outlived its `search run`")
    finally:
        if first.poll() is None:
            first.kill()
            first.communicate()
    assert first.returncode == -signal.SIGKILL
    [killed] = [t for t in _trials(storage_url) if t.number == killed.number]
    assert killed.state == TrialState.RUNNING and killed.params
    # Smoke trials are short: the killed worker may have finished a trial before the one it died in.
    finished_before = sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in _trials(storage_url))

    time.sleep(GRACE + 1.5)  # past the grace period: the next worker finds the trial stale
    second = run_search(*_run_args(storage_url, N_TRIALS), timeout=300)
    assert second.returncode == 0, second.stderr
    assert f"{N_TRIALS}/{N_TRIALS} new finished trials" in second.stdout

    trials = {t.number: t for t in _trials(storage_url)}
    assert not [n for n, t in trials.items() if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    assert trials[killed.number].state == TrialState.FAIL
    assert [n for n, t in trials.items() if t.state == TrialState.FAIL] == [killed.number]

    retries = [t for t in trials.values() if RetryHeartbeatStaleTrialCallback.retried_trial_number(t) == killed.number]
    assert len(retries) == 1, "the stale trial is retried exactly once"
    retry = retries[0]
    assert RetryHeartbeatStaleTrialCallback.retry_history(retry) == [killed.number]
    assert retry.params == killed.params  # the same configuration, trained again
    # The killed trial was one of the study's first two, so the median pruner (2 startup trials) cannot prune its retry.
    assert retry.state == TrialState.COMPLETE and 0.0 <= retry.value <= 1.0
    finished = [t for t in trials.values() if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert (
        len(finished) == finished_before + N_TRIALS
    )  # the second run added exactly what it was asked, despite the crash


@pytest.mark.postgres
def test_unreachable_postgres_is_one_clear_line(pg_url: str, run_search) -> None:
    """A wrong port (a stopped server looks the same to a new worker): one red line, password masked."""
    import sqlalchemy

    url = sqlalchemy.engine.make_url(pg_url).set(port=1).render_as_string(hide_password=False)
    started = time.monotonic()
    result = run_search(*_run_args(url, 1), timeout=120)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Cannot reach the storage postgresql+psycopg://search:***@127.0.0.1:1/" in lines[0]
    assert "search:search@" not in result.stderr + result.stdout  # the password is never printed
    assert time.monotonic() - started < 60
