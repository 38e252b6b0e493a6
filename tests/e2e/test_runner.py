"""search/run/runner.py: create/resume a study, exact trial counts over several workers, refusals, Ctrl-C.

The smoke study (2 folds, 2 epochs, 200 pairs), one torch thread per worker.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import sqlalchemy
from optuna.trial import TrialState

from models.training import layout as layout_module
from models.training.layout import Layout, LayoutChoice, usable_cores
from models.training.speed import this_machine
from search.errors import SearchError, StorageError
from search.run import runner
from search.run.runner import OPTUNA_MAJOR_ATTR, prepare_study, run_study
from search.run.speed import run_layout
from search.storage.studies import open_storage
from search.study.definition import DEFINITION_ATTR, stored_definition
from search.study.loader import load_definition, with_overrides
from search.study.record import TrialRecord

SMOKE = load_definition("smoke")


def _states(url: str) -> list[TrialState]:
    return [t.state for t in optuna.load_study(study_name="smoke", storage=url).get_trials(deepcopy=False)]


def test_smoke_study_completes_then_resumes(sqlite_url: str) -> None:
    first = run_study(SMOKE, storage_url=sqlite_url, n_trials=2, n_workers=1, threads=1)
    assert (first.n_added, first.n_failed, first.n_finished_total, first.interrupted) == (2, 0, 2, False)
    assert first.best_value is not None and 0.0 <= first.best_value <= 1.0

    study = optuna.load_study(study_name="smoke", storage=sqlite_url)  # plain Optuna reads it back
    assert study.user_attrs["definition_fingerprint"] == SMOKE.fingerprint()
    assert (study.user_attrs["data_seed"], study.user_attrs["n_pairs"]) == (SMOKE.data_seed, SMOKE.n_pairs)
    assert study.user_attrs[OPTUNA_MAJOR_ATTR] == optuna.__version__.split(".")[0]
    for trial in study.trials:
        assert trial.state in (TrialState.COMPLETE, TrialState.PRUNED)
        assert 0.0 <= trial.value <= 1.0
        record = TrialRecord.from_trial(trial)
        assert record.fold_accuracies is not None and record.fold_std is not None and record.digit_accuracy is not None
        assert record.n_params is not None and record.train_seconds is not None and record.has_configs

    second = run_study(SMOKE, storage_url=sqlite_url, n_trials=1, n_workers=1, threads=1)
    assert (second.n_added, second.n_finished_total) == (1, 3)
    assert [t.number for t in optuna.load_study(study_name="smoke", storage=sqlite_url).trials] == [0, 1, 2]
    assert "1/1 new finished trials" in second.describe() and "of 3 finished" in second.describe()


def test_starting_points_run_first_and_only_once(sqlite_url: str) -> None:
    point = {"weight_sharing": True, "aux_loss": "alpha", "alpha": 1.5, "lr": 0.1, "conv_width": 6}
    definition = dataclasses.replace(SMOKE, enqueue=(point,))
    run_study(definition, storage_url=sqlite_url, n_trials=2, n_workers=1, threads=1)
    run_study(definition, storage_url=sqlite_url, n_trials=1, n_workers=1, threads=1)  # resumed: not queued again
    trials = optuna.load_study(study_name="smoke", storage=sqlite_url).trials
    assert trials[0].params == point
    assert sum(t.params == point for t in trials) == 1 and len(trials) == 3


def test_a_changed_definition_is_refused(sqlite_url: str) -> None:
    prepare_study(open_storage(sqlite_url), SMOKE)
    with pytest.raises(StorageError, match=r"'smoke' in .* was created from a different definition .*never mixed"):
        run_study(with_overrides(SMOKE, n_folds=3), storage_url=sqlite_url, n_trials=1, n_workers=1)
    prepare_study(open_storage(sqlite_url), load_definition("smoke"))  # the same definition loads fine


def test_a_study_keeps_the_definition_it_was_created_from(sqlite_url: str) -> None:
    storage = open_storage(sqlite_url)
    study = prepare_study(storage, SMOKE)
    assert stored_definition(study.user_attrs) == SMOKE
    # A study created before studies kept their definition gets it when it is next run.
    with sqlalchemy.create_engine(sqlite_url).begin() as connection:
        connection.execute(
            sqlalchemy.text("DELETE FROM study_user_attributes WHERE key = :key"), {"key": DEFINITION_ATTR}
        )
    assert stored_definition(optuna.load_study(study_name="smoke", storage=sqlite_url).user_attrs) is None
    assert stored_definition(prepare_study(open_storage(sqlite_url), SMOKE).user_attrs) == SMOKE


def test_a_study_of_another_optuna_major_is_refused(sqlite_url: str) -> None:
    storage = open_storage(sqlite_url)
    study = prepare_study(storage, SMOKE)
    storage.set_study_user_attr(study._study_id, OPTUNA_MAJOR_ATTR, "4")
    with pytest.raises(StorageError, match=r"created with Optuna 4\.x but this worker runs Optuna 5\."):
        prepare_study(storage, SMOKE)


def test_a_study_search_did_not_create_is_refused(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "ATTRS_WAIT_SECONDS", 0.2)
    optuna.create_study(study_name="smoke", storage=sqlite_url, direction="maximize")
    with pytest.raises(StorageError, match="that `search` did not create"):
        prepare_study(open_storage(sqlite_url), SMOKE)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_trials": 0}, r"--trials must be at least 1 .*but got 0"),
        ({"n_trials": -3}, r"--trials must be at least 1 .*but got -3"),
        ({"n_trials": 1, "n_workers": 0}, "--workers must be at least 1"),
        ({"n_trials": 1, "threads": 0}, "--threads must be at least 1"),
        ({"n_trials": 1, "timeout": 0}, "--timeout must be a positive"),
    ],
)
def test_run_arguments_are_checked_before_anything_runs(sqlite_url: str, kwargs: dict, match: str) -> None:
    with pytest.raises(SearchError, match=match):
        run_study(SMOKE, storage_url=sqlite_url, **kwargs)
    assert not Path(sqlite_url.removeprefix("sqlite:///")).exists()


def test_worker_layout_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Neither flag: the layout measured fastest on this machine (here a cached 1x2, which real timings could
    not be relied on to give); --threads alone fills the cores; --workers alone gives one thread each."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    cores = usable_cores()
    choice = LayoutChoice(
        layout=Layout(1, 2),
        pairs_per_second={"2x1": 10.0, "1x2": 20.0},
        settings={"2x1": "plain", "1x2": "plain"},
        cores=cores,
        probe="siamese 32x64 batch 100",
        machine=this_machine(),
    )
    layout_module._write_cache(choice)
    assert run_layout(SMOKE, None, None) == Layout(1, 2)
    assert run_layout(SMOKE, 3, None) == Layout(3, 1)
    assert run_layout(SMOKE, None, 2) == Layout(max(1, cores // 2), 2)
    assert run_layout(SMOKE, 2, 2) == Layout(2, 2)


@pytest.mark.slow
def test_four_workers_add_exactly_the_asked_trials(storage_url: str) -> None:
    progress = []
    summary = run_study(SMOKE, storage_url=storage_url, n_trials=5, n_workers=4, threads=1, on_progress=progress.append)
    trials = optuna.load_study(study_name="smoke", storage=storage_url).trials
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(finished) == summary.n_added == 5  # not 4, not 8: tickets, not per-worker quotas
    assert summary.n_failed == 0 and not [t for t in trials if t.state == TrialState.RUNNING]
    assert sorted(t.number for t in trials) == list(range(len(trials)))  # distinct numbers, none lost
    assert progress[-1].n_done == 5 and progress[-1].n_trials == 5 and progress[-1].n_running == 0


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_sigint_stops_cleanly_and_leaves_nothing_running(sqlite_url: str, tmp_path: Path, workers: int) -> None:
    search = Path(sys.executable).with_name("search")
    args = [
        str(search),
        "run",
        "--study",
        "smoke",
        "--trials",
        "200",
        "--workers",
        str(workers),
        "--threads",
        "1",
        "--storage",
        sqlite_url,
    ]
    # Its own process group, so the SIGINT below reaches every process of the run, as Ctrl-C in a terminal does.
    process = subprocess.Popen(
        args, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # wait until the workers train: one trial done, one running
            assert process.poll() is None, process.communicate()
            time.sleep(0.2)
            try:  # read-only, with sqlite3: opening it with Optuna would race the run to create the tables
                with contextlib.closing(sqlite3.connect(sqlite_url.removeprefix("sqlite:///"))) as db:
                    states = {state for (state,) in db.execute("SELECT state FROM trials")}
            except sqlite3.OperationalError:  # no tables yet
                continue
            if {"COMPLETE", "RUNNING"} <= states:
                break
        os.killpg(process.pid, signal.SIGINT)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert "(interrupted)" in stdout
    states = _states(sqlite_url)
    assert TrialState.RUNNING not in states and TrialState.WAITING not in states
    assert states.count(TrialState.FAIL) <= workers  # at most the trials that were training
    failed = [t for t in optuna.load_study(study_name="smoke", storage=sqlite_url).trials if t.state == TrialState.FAIL]
    assert all((TrialRecord.from_trial(t).failure_reason or "").startswith("interrupted") for t in failed)


def test_timeout_stops_starting_trials(sqlite_url: str) -> None:
    """Past --timeout no worker starts a trial; the ones under way finish; the run ends without an error."""
    timeout = 12.0  # the workers start within it (a few seconds) and 200 smoke trials take far longer
    summary = run_study(SMOKE, storage_url=sqlite_url, n_trials=200, n_workers=2, threads=1, timeout=timeout)
    assert 1 <= summary.n_added < 200 and not summary.interrupted
    assert summary.elapsed >= timeout
    assert summary.n_failed == 0 and TrialState.RUNNING not in _states(sqlite_url)
    # The deadline falls `timeout` after the workers start, so no earlier than `timeout` after the first
    # trial began: every trial began before it (a trial is created just after its worker checks the clock).
    starts = [t.datetime_start for t in optuna.load_study(study_name="smoke", storage=sqlite_url).trials]
    assert (max(starts) - min(starts)).total_seconds() < timeout + 2


def test_a_study_records_its_data_and_refuses_other_digits(sqlite_url: str) -> None:
    embedded = {"data_source": "embedded", "data_sha256": "a" * 64}
    study = prepare_study(open_storage(sqlite_url), SMOKE, data=embedded)
    assert {key: study.user_attrs[key] for key in embedded} == embedded
    prepare_study(open_storage(sqlite_url), SMOKE, data=embedded)  # the same digits load fine
    other = {"data_source": "idx:/data/mnist", "data_sha256": "b" * 64}
    with pytest.raises(
        StorageError,
        match=r"created from other digits \(the embedded digits, sha256 aaaaaaaaaaaa\) than this run's \(--data-dir /data/mnist, sha256 bbbbbbbbbbbb\)",
    ):
        prepare_study(open_storage(sqlite_url), SMOKE, data=other)


def test_a_trial_whose_worker_process_is_gone_is_failed_and_retried_at_once(sqlite_url: str) -> None:
    """A `kill -9`'d run leaves a trial RUNNING; its heartbeat would take the grace period to go stale.
    The next run on the same host sees its worker's PID is gone and retries it straight away."""
    run_study(SMOKE, storage_url=sqlite_url, n_trials=1, n_workers=1, threads=1)
    study = optuna.load_study(study_name="smoke", storage=sqlite_url)
    [done] = study.get_trials(deepcopy=False)
    worker = TrialRecord.from_trial(done)
    assert worker.worker_host == socket.gethostname() and worker.worker_pid != os.getpid()
    gone = subprocess.Popen(["true"])
    gone.wait()  # its PID now names no process
    identity = TrialRecord(worker_host=socket.gethostname(), worker_pid=gone.pid).to_user_attrs()
    study.add_trial(
        optuna.trial.create_trial(
            state=TrialState.RUNNING, params=done.params, distributions=done.distributions, user_attrs=identity
        )
    )
    orphan = study.get_trials(deepcopy=False)[-1]

    summary = run_study(SMOKE, storage_url=sqlite_url, n_trials=1, n_workers=1, threads=1)  # default 90 s grace

    trials = {t.number: t for t in optuna.load_study(study_name="smoke", storage=sqlite_url).get_trials(deepcopy=False)}
    assert trials[orphan.number].state == TrialState.FAIL
    assert (
        TrialRecord.from_trial(trials[orphan.number]).failure_reason
        == f"abandoned: its worker process {gone.pid} on {socket.gethostname()} is gone"
    )
    [retry] = [t for t in trials.values() if t.number > orphan.number]
    assert retry.params == orphan.params and retry.state in (TrialState.COMPLETE, TrialState.PRUNED)
    assert summary.n_added == 1  # failed by its gone PID above: a trial without heartbeats never goes stale
