"""Run a study: N new finished trials with W worker processes on one storage.

`n_trials` counts the trials this call adds that finish COMPLETE or PRUNED, over all its workers:
each worker takes a ticket from a shared counter before it asks Optuna for a trial, and gives it
back when the trial fails (interrupted, an error, a dead worker), so the total is exact.

Stopping: the first Ctrl-C stops every trial after its current epoch (they end FAILED, reason
"interrupted"), a second one stops at once; a trial a dead worker left RUNNING is failed on the way
out. Workers of other `search run` processes (other machines) join the same study through PostgreSQL.
"""

from __future__ import annotations

import logging
import logging.handlers
import multiprocessing as mp
import multiprocessing.connection
import multiprocessing.forkserver
import multiprocessing.resource_tracker
import os
import queue
import secrets
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

from models.errors import ModelsError
from models.draws import PairSet
from models.train import Speed
from search.definitions import StudyDefinition
from search.errors import SearchError, StorageError, StorageOutage
from search.memory import limit_kernel_caches, release_memory
from search.objective import Objective, TrialInterrupted
from search.sampling import build_pruner, build_sampler
from search.speed import study_speed
from search.storage import is_grpc_url, mask_url, open_storage, resolve_storage_url, trial_worker

logger = logging.getLogger(__name__)

# The worker layout when neither --workers nor --threads is given (measured on the 2-core machine:
# see the README's speed section). --workers alone gives each worker one torch thread.
DEFAULT_WORKERS, DEFAULT_THREADS = 2, 1
MAX_FAILURES_IN_A_ROW = 3  # a worker whose trials keep failing stops instead of spinning
OPTUNA_MAJOR_ATTR = "optuna_major"  # study user attr: the Optuna major that created the study
STOP_POLL_SECONDS = 0.2
QUIET_TRACKER = "ignore::UserWarning:multiprocessing.resource_tracker"  # see _start_helper_processes
PROGRESS_SECONDS = 5.0  # on_progress is called on every change, and at least this often
ATTRS_WAIT_SECONDS = 5.0  # how long a joining worker waits for the creator to write the study's attrs


@dataclass(frozen=True)
class RunProgress:
    """What a progress display shows while a run goes on."""

    n_done: int  # trials this run added that finished (complete or pruned)
    n_trials: int  # how many it was asked to add
    n_running: int  # trials training right now in this run's workers
    best_value: float | None  # best (first-objective) value in the study so far
    elapsed: float  # seconds since the run started


@dataclass(frozen=True)
class RunSummary:
    """The outcome of `run_study`."""

    study_name: str
    storage_url: str  # password masked
    n_trials: int  # asked for
    n_complete: int  # added by this run
    n_pruned: int
    n_failed: int
    n_finished_total: int  # complete + pruned trials in the study now, this run's included
    best_value: float | None
    best_number: int | None
    best_params: dict[str, Any] = field(default_factory=dict)
    elapsed: float = 0.0
    interrupted: bool = False

    @property
    def n_added(self) -> int:
        return self.n_complete + self.n_pruned

    def describe(self) -> str:
        best = "no complete trial yet" if self.best_value is None else f"best value {self.best_value:.4f} (trial {self.best_number})"
        stopped = " (interrupted)" if self.interrupted else ""
        return (
            f"study {self.study_name}: {self.n_added}/{self.n_trials} new finished trials{stopped} "
            f"({self.n_complete} complete, {self.n_pruned} pruned, {self.n_failed} failed) in {self.elapsed:.1f} s; "
            f"{best} of {self.n_finished_total} finished; storage {self.storage_url}"
        )


def run_study(
    definition: StudyDefinition,
    *,
    storage_url: str | None = None,
    n_trials: int,
    n_workers: int | None = None,
    data_dir: Path | None = None,
    seed: int | None = None,
    timeout: float | None = None,
    threads: int | None = None,
    heartbeat_interval: float | None = None,
    grace_period: float | None = None,
    max_outage: float | None = None,
    verbose: bool = False,
    on_progress: Callable[[RunProgress], None] | None = None,
    on_warning: Callable[[str], None] | None = None,
) -> RunSummary:
    """Create or resume the study `definition.name` and add `n_trials` finished trials to it.

    `seed` sets the sampler seed only (worker i samples with seed + i, shifted on a resumed
    study so it does not replay the first run's samples). Without it each process draws its own
    seed, so `search run` processes started together on several machines (or compose replicas)
    do not propose the same configurations; pass `seed` for a reproducible run. The training
    draw and the folds always follow the definition, so every trial is scored on the same data.
    `timeout` stops starting new trials after that many seconds; running ones finish. A database
    that stops answering is waited for, up to `max_outage` seconds (search.storage), then the run
    ends with `StorageOutage`: its finished trials are stored, and the next run retries the rest.
    """
    n_workers, threads = _check_run_args(n_trials, n_workers, threads, timeout)
    url = resolve_storage_url(storage_url)
    storage = open_storage(url, heartbeat_interval=heartbeat_interval, grace_period=grace_period, max_outage=max_outage)
    if is_grpc_url(url) and on_warning is not None:
        on_warning(
            "the gRPC storage proxy sends no heartbeats: a trial whose worker dies stays RUNNING and is not retried."
        )
    data = Objective(definition, data_dir=data_dir)
    pairs, folds = data.training_pairs(), data.folds()  # a bad --data-dir fails here, once
    study = prepare_study(storage, definition, data=data.data_identity())
    _fail_dead_trials(study)
    speed = study_speed(definition, threads=threads).speed  # measured once per machine, before any worker runs
    n_existing = len(study.get_trials(deepcopy=False))
    if seed is None:
        seed = definition.seed + secrets.randbelow(2**31)  # distinct across processes and machines
    base_seed = seed + 1000 * n_existing  # a resumed run samples anew

    ctx = _process_context()
    _start_helper_processes(ctx)
    shared = _Shared(ctx, n_trials=n_trials, n_workers=n_workers, best=_best_value(study), maximize=_maximize(study))
    jobs = [
        _WorkerJob(
            index=i, definition=definition, storage_url=url, pairs=pairs, folds=folds, sampler_seed=base_seed + i,
            threads=threads, speed=speed, heartbeat_interval=heartbeat_interval, grace_period=grace_period,
            max_outage=max_outage, verbose=verbose,
            deadline=None if timeout is None else time.time() + timeout,
        )
        for i in range(n_workers)
    ]  # fmt: skip
    started = time.monotonic()

    def report() -> None:
        if on_progress is not None:
            on_progress(shared.progress(time.monotonic() - started))

    report()
    with _stop_on_sigint(shared) as interrupted:
        try:  # one worker too: a worker process holds no scikit-learn, data files or display (README: memory)
            _run_processes(ctx, jobs, shared, study, report)
        except KeyboardInterrupt:  # the second Ctrl-C: Optuna has failed the running trial already
            interrupted.set()
        except StorageOutage:  # nothing can be written: the next run fails and retries the trials left RUNNING
            raise
        except BaseException:
            _fail_leftovers(study, shared)
            raise
        _fail_leftovers(study, shared)
    report()
    return _summary(study, url, shared, n_trials, time.monotonic() - started, interrupted.is_set())


def prepare_study(storage: BaseStorage, definition: StudyDefinition, *, data: Mapping[str, str] | None = None) -> optuna.Study:
    """Create the study named after the definition, or load it after checking it is the same one.

    A study created from another definition (fingerprint), on other digits (`data`, from
    `Objective.data_identity`), or by another Optuna major, is refused: trials of different searches
    are never mixed.
    """
    attrs = {
        "definition_fingerprint": definition.fingerprint(),
        "data_seed": definition.data_seed,
        "n_pairs": definition.n_pairs,
        "n_folds": definition.n_folds,
        "epochs": definition.epochs,
        **(data or {}),
    }
    major = optuna.__version__.split(".")[0]
    try:
        study_id = storage.create_new_study(
            [optuna.study.StudyDirection[d.upper()] for d in definition.directions], study_name=definition.name
        )
    except optuna.exceptions.DuplicatedStudyError:
        study_id = storage.get_study_id_from_name(definition.name)
        _check_existing(storage, study_id, definition, attrs, major)
    else:
        for key, value in {**attrs, OPTUNA_MAJOR_ATTR: major}.items():
            storage.set_study_user_attr(study_id, key, value)
        study = optuna.load_study(study_name=definition.name, storage=storage)
        for params in definition.enqueue:  # the definition's starting points run first
            study.enqueue_trial(params, skip_if_exists=True)
        logger.info("created study %s (%d starting points queued)", definition.name, len(definition.enqueue))
        return study
    return optuna.load_study(study_name=definition.name, storage=storage)


def _check_existing(storage: BaseStorage, study_id: int, definition: StudyDefinition, attrs: Mapping[str, Any], major: str) -> None:
    url = mask_url(getattr(storage, "url", "the storage"))
    fingerprint = attrs["definition_fingerprint"]
    user_attrs = storage.get_study_user_attrs(study_id)
    deadline = time.monotonic() + ATTRS_WAIT_SECONDS
    while "definition_fingerprint" not in user_attrs:  # another process may have created it a moment ago
        if time.monotonic() > deadline:
            raise StorageError(
                f"The storage {url} holds a study {definition.name!r} that `search` did not create (no definition "
                "fingerprint); use another --storage or rename the study."
            )
        time.sleep(0.1)
        user_attrs = storage.get_study_user_attrs(study_id)
    their_major = str(user_attrs.get(OPTUNA_MAJOR_ATTR, major))
    if their_major != major:
        raise StorageError(
            f"The study {definition.name!r} in {url} was created with Optuna {their_major}.x but this worker runs "
            f"Optuna {optuna.__version__}; workers of different Optuna majors must not share a study. "
            f"Install optuna {their_major}.x here, or use another --storage."
        )
    if user_attrs["definition_fingerprint"] != fingerprint:
        raise StorageError(
            f"The study {definition.name!r} in {url} was created from a different definition "
            f"(fingerprint {str(user_attrs['definition_fingerprint'])[:12]}, now {fingerprint[:12]}; "
            f"it ran {user_attrs.get('n_folds')} folds x {user_attrs.get('epochs')} epochs). Studies are never "
            "mixed: restore the definition (and the --epochs/--folds it ran with) or use another --storage."
        )
    theirs = user_attrs.get("data_sha256")  # absent from studies created before data was recorded
    if theirs is not None and "data_sha256" in attrs and theirs != attrs["data_sha256"]:
        raise StorageError(
            f"The study {definition.name!r} in {url} was created from other digits ({_data_name(user_attrs)}, "
            f"sha256 {str(theirs)[:12]}) than this run's ({_data_name(attrs)}, sha256 {attrs['data_sha256'][:12]}). "
            "Studies are never mixed: run with the --data-dir it was created with, or use another --storage."
        )


def _data_name(attrs: Mapping[str, Any]) -> str:
    source = str(attrs.get("data_source", "unknown"))
    return "the embedded digits" if source == "embedded" else f"--data-dir {source.removeprefix('idx:')}"


def _check_run_args(n_trials: int, n_workers: int | None, threads: int | None, timeout: float | None) -> tuple[int, int]:
    if n_trials < 1:
        raise SearchError(f"--trials must be at least 1 (new finished trials to add), but got {n_trials}.")
    if n_workers is not None and n_workers < 1:
        raise SearchError(f"--workers must be at least 1, but got {n_workers}.")
    if threads is not None and threads < 1:
        raise SearchError(f"--threads must be at least 1, but got {threads}.")
    if timeout is not None and timeout <= 0:
        raise SearchError(f"--timeout must be a positive number of seconds, but got {timeout:g}.")
    if n_workers is None:
        return DEFAULT_WORKERS, threads or DEFAULT_THREADS
    return n_workers, threads or 1


# ---------------------------------------------------------------------------------------------------
# State shared by the parent and its workers.


class _Shared:
    """Counters in shared memory: tickets left, outcomes, the best value, each worker's current trial."""

    def __init__(self, ctx: Any, *, n_trials: int, n_workers: int, best: float | None, maximize: bool) -> None:
        self.n_trials = n_trials
        self.lock = ctx.Lock()
        self.tickets = ctx.Value("i", n_trials, lock=False)  # trials still to start
        self.counts = ctx.Array("i", 3, lock=False)  # complete, pruned, failed
        self.best = ctx.Value("d", float("nan") if best is None else best, lock=False)
        self.maximize = maximize
        self.current = ctx.Array("i", [-1] * n_workers, lock=False)  # trial id each worker trains, -1: none
        self.closing = ctx.Event()  # start no new trial
        self.stop = ctx.Event()  # stop the running trials after their current epoch
        self.messages = ctx.Queue()  # ("error", exception) and ("log", LogRecord) from workers

    def claim(self, deadline: float | None) -> bool:
        """Take a ticket for one more trial, unless the run is closing, past its deadline or done."""
        if deadline is not None and time.time() >= deadline:
            self.closing.set()  # --timeout: the run closes for every worker, and the parent knows why they stop
        if self.closing.is_set():
            return False
        with self.lock:
            if self.tickets.value <= 0:
                return False
            self.tickets.value -= 1
            return True

    def finish(self, worker: int, state: TrialState | None, value: float | None) -> None:
        """Record a trial's outcome; a trial that did not finish gives its ticket back."""
        with self.lock:
            self.current[worker] = -1
            if state in (TrialState.COMPLETE, TrialState.PRUNED):
                self.counts[0 if state == TrialState.COMPLETE else 1] += 1
            else:
                self.counts[2] += 1
                self.tickets.value += 1
            if state == TrialState.COMPLETE and value is not None:
                old = self.best.value
                if old != old or (value > old if self.maximize else value < old):  # old != old: NaN, no best yet
                    self.best.value = value

    def abandon(self, worker: int) -> int:
        """A worker died: give back the ticket of the trial it was training; that trial's id, or -1."""
        with self.lock:
            trial_id = self.current[worker]
            if trial_id != -1:
                self.current[worker] = -1
                self.tickets.value += 1
            return trial_id

    def progress(self, elapsed: float) -> RunProgress:
        with self.lock:
            best = self.best.value
            return RunProgress(
                n_done=self.counts[0] + self.counts[1],
                n_trials=self.n_trials,
                n_running=sum(t != -1 for t in self.current),
                best_value=None if best != best else best,
                elapsed=elapsed,
            )


@dataclass(frozen=True)
class _WorkerJob:
    index: int
    definition: StudyDefinition
    storage_url: str
    pairs: PairSet  # the study's training pairs, drawn once by the parent
    folds: list[tuple[np.ndarray, np.ndarray]]  # and their KFold splits, so workers never import scikit-learn
    sampler_seed: int
    threads: int
    speed: Speed  # compute settings, measured by the parent (search.speed)
    heartbeat_interval: float | None
    grace_period: float | None
    verbose: bool
    deadline: float | None  # time.time() after which no new trial starts
    max_outage: float | None = None  # seconds a lost database connection is retried (search.storage)


def _work(job: _WorkerJob, shared: _Shared, *, storage: BaseStorage) -> None:
    """One worker's loop: claim a ticket, run one trial, record its outcome; until no ticket is left."""
    import torch

    limit_kernel_caches()  # before the first trial builds a kernel: see search/memory.py
    torch.set_num_threads(job.threads)
    definition = job.definition
    study = optuna.load_study(
        study_name=definition.name,
        storage=storage,
        sampler=build_sampler(definition, seed=job.sampler_seed),
        pruner=build_pruner(definition),
    )
    objective = Objective(definition, pairs=job.pairs, folds=job.folds, threads=job.threads, speed=job.speed, should_stop=shared.stop.is_set)

    def tracked(trial: optuna.Trial) -> float | tuple[float, float]:
        shared.current[job.index] = trial._trial_id
        return objective(trial)

    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # failures are logged below, in one line, with their reason
    try:
        _trial_loop(job, shared, study, tracked)
    finally:
        optuna.logging.set_verbosity(verbosity)


def _trial_loop(
    job: _WorkerJob,
    shared: _Shared,
    study: optuna.Study,
    objective: Callable[[optuna.Trial], Any],
) -> None:
    failures_in_a_row = 0
    while shared.claim(job.deadline):
        finished: list[FrozenTrial] = []
        try:
            study.optimize(objective, n_trials=1, catch=(ModelsError,), callbacks=[lambda _, t: finished.append(t)])
        except TrialInterrupted:  # Optuna has failed the trial
            shared.finish(job.index, None, None)
            break
        except KeyboardInterrupt:  # a second Ctrl-C (or SIGTERM): Optuna has failed the trial
            shared.finish(job.index, None, None)
            raise
        except optuna.exceptions.UpdateFinishedTrialError as error:  # failed as stale by another worker meanwhile
            logger.warning("worker %d: %s", job.index, error)
        except Exception as error:
            # When the database is gone, Optuna's failed attempt to record the trial's end hides our
            # StorageOutage behind an UnboundLocalError of its own (_run_trial's `finally`): unwrap it.
            outage = _outage_behind(error)
            if outage is None:
                raise
            raise outage from None
        trial = finished[0] if finished else None
        state = trial.state if trial is not None else None
        shared.finish(job.index, state, trial.values[0] if trial is not None and trial.values else None)
        release_memory()  # the next trial starts from the footprint this one started from
        if state in (TrialState.COMPLETE, TrialState.PRUNED):
            failures_in_a_row = 0
            continue
        reason = trial.user_attrs.get("failure_reason", "unknown error") if trial is not None else "unknown error"
        logger.warning("trial %s failed: %s", trial.number if trial is not None else "?", reason)
        failures_in_a_row += 1
        if failures_in_a_row >= MAX_FAILURES_IN_A_ROW:
            raise SearchError(
                f"{failures_in_a_row} trials of study {study.study_name!r} failed in a row (last: "
                f"{' '.join(str(reason).split())[:300]}); stopping this worker."
            )


# ---------------------------------------------------------------------------------------------------
# Processes.


def _process_context() -> Any:
    """Workers fork from a clean server process that imported torch & co. once (each spawn would pay
    seconds of imports again); the server never opened a database connection or a torch thread pool."""
    if "forkserver" not in mp.get_all_start_methods():
        return mp.get_context("spawn")
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["search.runner"])
    return ctx


def _start_helper_processes(ctx: Any) -> None:
    """Start multiprocessing's helper processes (resource tracker, fork server) deaf to Ctrl-C.

    A terminal's Ctrl-C reaches every process of the run. These two would print a traceback if it came
    while they import (the fork server imports torch: seconds). SIG_IGN survives their exec, and the
    workers the fork server forks inherit it until `_worker_main` sets its own: the parent alone
    answers Ctrl-C. A Ctrl-C in the few milliseconds this takes is lost.
    """
    if threading.current_thread() is not threading.main_thread():  # signal.signal is for the main thread only
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    # The tracker unlinks the run's semaphores when the run dies; after a `kill -9` it would warn of
    # "leaked semaphore objects" while doing just that. It takes its -W options from ours.
    sys.warnoptions.append(QUIET_TRACKER)
    try:
        mp.resource_tracker.ensure_running()
        if ctx.get_start_method() == "forkserver":
            mp.forkserver.ensure_running()
    finally:
        sys.warnoptions.remove(QUIET_TRACKER)
        signal.signal(signal.SIGINT, previous)


def _worker_main(job: _WorkerJob, shared: _Shared) -> None:
    """Entry point of a worker process: the parent alone handles Ctrl-C."""
    _exit_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)  # the parent's last resort: Optuna fails the trial
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    search_logger = logging.getLogger("search")
    search_logger.addHandler(_TaggedQueueHandler(shared.messages))
    search_logger.setLevel(logging.INFO if job.verbose else logging.WARNING)
    search_logger.propagate = False
    try:
        storage = open_storage(
            job.storage_url,
            heartbeat_interval=job.heartbeat_interval,
            grace_period=job.grace_period,
            max_outage=job.max_outage,
            rejoin=True,
        )
        _work(job, shared, storage=storage)
    except (SearchError, ModelsError) as error:
        shared.messages.put(("error", error))
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        raise SystemExit(1) from None
    except Exception as error:
        shared.messages.put(("error", SearchError(f"worker {job.index} crashed: {type(error).__name__}: {error}")))
        raise


class _TaggedQueueHandler(logging.handlers.QueueHandler):
    """Sends a worker's log records to the parent as ("log", record), beside its ("error", exception) messages."""

    def enqueue(self, record: logging.LogRecord) -> None:
        self.queue.put_nowait(("log", record))


def _exit_with_parent() -> None:
    """End this worker at once when the `search run` process that started it dies (killed, machine lost).

    Otherwise the worker would train on, orphaned, through the run's remaining trials. It ends as a
    lost machine would: its trial stays RUNNING until its heartbeat goes stale, then the next run
    fails it and retries its parameters (storage.py). (Not prctl's parent-death signal: the parent
    of a worker is the fork server, which lives as long as any worker does.)
    """
    parent = mp.parent_process()
    if parent is None:  # run in a process of its own (tests), not started by a run
        return

    def watch() -> None:
        mp.connection.wait([parent.sentinel])  # readable once the parent is gone
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _raise_keyboard_interrupt(signum: int, frame: Any) -> None:
    signal.signal(signum, signal.SIG_IGN)  # once: a second signal must not interrupt the clean-up
    raise KeyboardInterrupt


def _run_processes(ctx: Any, jobs: list[_WorkerJob], shared: _Shared, study: optuna.Study, report: Callable[[], None]) -> None:
    processes = [ctx.Process(target=_worker_main, args=(job, shared), name=f"search-worker-{job.index}") for job in jobs]
    for process in processes:
        process.start()
    errors: list[BaseException] = []
    shown, reported = None, time.monotonic()
    try:
        while any(p.is_alive() for p in processes):
            _drain(shared, errors)
            for job, process in zip(jobs, processes):
                if process.exitcode not in (None, 0) and not _outage(errors):
                    _retry_abandoned(study, shared, job.index, f"its worker exited with code {process.exitcode}")
            progress = shared.progress(0.0)
            changed = (progress.n_done, progress.n_running, progress.best_value) != shown
            if changed or time.monotonic() - reported >= PROGRESS_SECONDS:
                shown, reported = (progress.n_done, progress.n_running, progress.best_value), time.monotonic()
                report()
            if errors:
                shared.closing.set()  # no new trials; the running ones finish
            time.sleep(STOP_POLL_SECONDS)
    finally:
        for process in processes:  # only after a second Ctrl-C or a crash of this loop: stop them now
            if process.is_alive():
                process.terminate()  # SIGTERM: KeyboardInterrupt in the worker, Optuna fails its trial
                process.join(timeout=10)
            if process.is_alive():
                process.kill()
            process.join()
        _drain(shared, errors)
    if _outage(errors):  # the database is gone: failing the abandoned trials would only wait out another outage
        raise errors[0]
    for job, process in zip(jobs, processes):
        if process.exitcode != 0:
            _retry_abandoned(study, shared, job.index, f"its worker exited with code {process.exitcode}")
    if errors:
        raise errors[0]
    if shared.tickets.value > 0 and not shared.closing.is_set():
        codes = ", ".join(str(p.exitcode) for p in processes)
        raise SearchError(f"every worker of study {study.study_name!r} exited before the run was done (exit codes {codes}).")


def _retry_abandoned(study: optuna.Study, shared: _Shared, worker: int, why: str) -> None:
    """A worker died during a trial: fail the trial now and queue its retry, as a stale heartbeat would."""
    trial_id = shared.abandon(worker)
    if trial_id != -1:
        _fail_and_retry(study, trial_id, why, retry=not shared.stop.is_set())


def _fail_dead_trials(study: optuna.Study) -> None:
    """Fail and retry at once the RUNNING trials whose worker process on this host is gone (a `kill -9`'d
    run), instead of waiting for their heartbeats to go stale. A trial of another host, or whose PID is
    alive (its worker, or a process that reused the PID), is left to the heartbeats."""
    host = socket.gethostname()
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker_host, pid = trial_worker(trial)
        if worker_host == host and pid is not None and not _pid_alive(pid):
            _fail_and_retry(study, trial._trial_id, f"its worker process {pid} on {host} is gone", retry=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def _fail_and_retry(study: optuna.Study, trial_id: int, why: str, *, retry: bool) -> None:
    """Fail a RUNNING trial whose worker is gone and, with `retry`, queue its parameters again once
    (Optuna's RetryHeartbeatStaleTrialCallback, as for a stale heartbeat)."""
    storage = study._storage
    try:
        if storage.get_trial(trial_id).state != TrialState.RUNNING:
            return
        storage.set_trial_user_attr(trial_id, "failure_reason", f"abandoned: {why}")
        if not storage.set_trial_state_values(trial_id, TrialState.FAIL):
            return
    except optuna.exceptions.UpdateFinishedTrialError:  # the heartbeat check of another worker was first
        return
    logger.warning("trial id %d failed: %s", trial_id, why)
    callback = getattr(storage, "get_heartbeat_stale_trial_callback", lambda: None)()
    if callback is not None and retry:
        callback(study, storage.get_trial(trial_id))


def _outage_behind(error: BaseException | None) -> StorageOutage | None:
    while error is not None and not isinstance(error, StorageOutage):
        error = error.__context__
    return error


def _outage(errors: list[BaseException]) -> bool:
    return bool(errors) and isinstance(errors[0], StorageOutage)


def _drain(shared: _Shared, errors: list[BaseException]) -> None:
    while True:
        try:
            kind, payload = shared.messages.get_nowait()
        except queue.Empty:
            return
        if kind == "error":
            errors.append(payload)
        else:
            logging.getLogger(payload.name).handle(payload)


@contextmanager
def _stop_on_sigint(shared: _Shared) -> Iterator[threading.Event]:
    """First Ctrl-C: no new trials, running ones stop after their epoch. Second: KeyboardInterrupt."""
    interrupted = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield interrupted
        return

    def handler(signum: int, frame: Any) -> None:
        if interrupted.is_set():
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # the clean-up after this one must not be cut short
            raise KeyboardInterrupt
        interrupted.set()
        shared.closing.set()
        shared.stop.set()
        logger.warning("stopping: the running trials end after their current epoch (Ctrl-C again to stop now)")

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield interrupted
    finally:
        signal.signal(signal.SIGINT, previous)


def _fail_leftovers(study: optuna.Study, shared: _Shared) -> None:
    """Fail any trial this run's workers left RUNNING (a second Ctrl-C, a crash): nothing stays RUNNING."""
    for worker in range(len(shared.current)):
        _retry_abandoned(study, shared, worker, "the run stopped during this trial")


# ---------------------------------------------------------------------------------------------------
# Summaries.


def _maximize(study: optuna.Study) -> bool:
    return study.directions[0] == optuna.study.StudyDirection.MAXIMIZE


def _best_trial(study: optuna.Study) -> FrozenTrial | None:
    complete = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.values]
    if not complete:
        return None
    pick = max if _maximize(study) else min
    return pick(complete, key=lambda t: t.values[0])


def _best_value(study: optuna.Study) -> float | None:
    best = _best_trial(study)
    return None if best is None else best.values[0]


def _summary(study: optuna.Study, url: str, shared: _Shared, n_trials: int, elapsed: float, interrupted: bool) -> RunSummary:
    best = _best_trial(study)
    finished = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
    return RunSummary(
        study_name=study.study_name,
        storage_url=mask_url(url),
        n_trials=n_trials,
        n_complete=shared.counts[0],
        n_pruned=shared.counts[1],
        n_failed=shared.counts[2],
        n_finished_total=len(finished),
        best_value=None if best is None else best.values[0],
        best_number=None if best is None else best.number,
        best_params={} if best is None else dict(best.params),
        elapsed=elapsed,
        interrupted=interrupted,
    )
