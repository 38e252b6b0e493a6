"""The worker processes of a run: each worker's trial loop, and the parent's watch over them.

Workers fork from a clean server process (search.run.forkserver: torch & co. imported once) and
each runs trials until no ticket is left (search.run.tickets holds the counters they share). The parent
alone answers Ctrl-C; a worker that dies has its trial failed and retried (search.run.recovery), as a
stale heartbeat would.
"""

from __future__ import annotations

import contextlib
import logging
import logging.handlers
import queue
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

from models.errors import ModelsError
from models.training.train import Speed
from search.errors import DigitPairError, SearchError, StorageOutage
from search.run.forkserver import exit_with_parent
from search.run.interrupts import interrupted as startup_interrupted
from search.run.memory import limit_kernel_caches, release_memory
from search.run.objective import Objective, TrialInterrupted
from search.run.recovery import retry_abandoned
from search.run.study_data import StudyData
from search.run.tickets import STOP_POLL_SECONDS, RunState
from search.storage.handles import trial_id
from search.storage.leases import LeaseKeeper, fail_expired_leases, has_heartbeat
from search.storage.studies import check_heartbeat, open_storage
from search.study.definition import StudyDefinition
from search.study.record import TrialRecord
from search.study.sampling import study_pruner, study_sampler

logger = logging.getLogger(__name__)

MAX_FAILURES_IN_A_ROW = 3  # a worker whose trials keep failing stops instead of spinning
PROGRESS_SECONDS = 5.0  # on_progress is called on every change, and at least this often


@dataclass(frozen=True)
class WorkerJob:
    index: int
    definition: StudyDefinition
    storage_url: str
    data: StudyData  # the study's training pairs and folds, loaded once by the parent (search.run.study_data)
    sampler_seed: int
    threads: int
    speed: Speed  # compute settings, measured by the parent (search.run.speed)
    heartbeat_interval: float | None
    grace_period: float | None
    verbose: bool
    deadline: float | None  # time.time() after which no new trial starts
    max_outage: float | None = None  # seconds a lost database connection is retried (search.storage.studies)


def _work(job: WorkerJob, shared: RunState, *, storage: BaseStorage) -> None:
    """One worker's loop: claim a ticket, run one trial, record its outcome; until no ticket is left."""
    import torch

    limit_kernel_caches()  # before the first trial builds a kernel: see search/run/memory.py
    torch.set_num_threads(job.threads)
    definition = job.definition
    study = optuna.load_study(
        study_name=definition.name,
        storage=storage,
        sampler=study_sampler(definition, seed=job.sampler_seed),
        pruner=study_pruner(definition),
    )
    objective = Objective(
        definition,
        data=job.data,
        threads=job.threads,
        speed=job.speed,
        should_stop=shared.stop.is_set,
    )

    # Behind the gRPC proxy no Optuna heartbeat guards the trial: this worker renews a lease instead.
    interval, grace = check_heartbeat(job.heartbeat_interval, job.grace_period)
    leases = None if has_heartbeat(storage) else LeaseKeeper(storage, interval)

    def tracked(trial: optuna.Trial) -> float | tuple[float, float]:
        shared.current[job.index] = trial_id(trial)
        if leases is not None:
            leases.start(trial_id(trial))
        return objective(trial)

    def before_each_trial() -> None:
        if leases is not None:
            fail_expired_leases(study, grace)

    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # failures are logged below, in one line, with their reason
    try:
        with leases if leases is not None else contextlib.nullcontext():
            _trial_loop(job, shared, study, tracked, before_each_trial)
    finally:
        optuna.logging.set_verbosity(verbosity)


def _trial_loop(
    job: WorkerJob,
    shared: RunState,
    study: optuna.Study,
    objective: Callable[[optuna.Trial], Any],
    before_each_trial: Callable[[], None],
) -> None:
    failures_in_a_row = 0
    while shared.claim(job.index, job.deadline):
        before_each_trial()
        finished: list[FrozenTrial] = []
        try:
            # A ModelsError is the trial's own (its configuration or data): Optuna fails that trial and the
            # worker goes on; any other DigitPairError (a storage outage, say) stops the worker.
            study.optimize(
                objective, n_trials=1, catch=(ModelsError,), callbacks=[lambda _, t, into=finished: into.append(t)]
            )
        except TrialInterrupted:  # Optuna has failed the trial
            shared.finish(job.index, None, None)
            break
        except KeyboardInterrupt:  # a second Ctrl-C (or SIGTERM): Optuna has failed the trial
            shared.finish(job.index, None, None)
            raise
        except optuna.exceptions.UpdateFinishedTrialError as error:  # failed as stale by another worker meanwhile
            logger.warning("worker %d: %s", job.index, error)
        except ValueError as error:
            # The same behind the proxy (its lease swept while this worker stalled): Optuna reads the trial's
            # state before it tells and refuses with a plain ValueError instead.
            if not str(error).startswith("Cannot tell a "):
                raise
            logger.warning("worker %d: %s (failed as stale meanwhile)", job.index, error)
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
        stored = TrialRecord.from_trial(trial).failure_reason if trial is not None else None
        reason = stored if stored is not None else "unknown error"
        logger.warning("trial %s failed: %s", trial.number if trial is not None else "?", reason)
        failures_in_a_row += 1
        if failures_in_a_row >= MAX_FAILURES_IN_A_ROW:
            raise SearchError(
                f"{failures_in_a_row} trials of study {study.study_name!r} failed in a row (last: "
                f"{' '.join(str(reason).split())[:300]}); stopping this worker."
            )


# ---------------------------------------------------------------------------------------------------
# Processes.


def worker_main(job: WorkerJob, shared: RunState) -> None:
    """Entry point of a worker process: the parent alone handles Ctrl-C."""
    exit_with_parent()
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
    except DigitPairError as error:
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


def _raise_keyboard_interrupt(signum: int, frame: Any) -> None:
    signal.signal(signum, signal.SIG_IGN)  # once: a second signal must not interrupt the clean-up
    raise KeyboardInterrupt


def run_processes(
    ctx: Any, jobs: list[WorkerJob], shared: RunState, study: optuna.Study, report: Callable[[], None]
) -> None:
    processes = [ctx.Process(target=worker_main, args=(job, shared), name=f"search-worker-{job.index}") for job in jobs]
    for process in processes:
        process.start()
    errors: list[BaseException] = []
    dead: set[int] = set()  # workers whose death was seen (and said) already
    shown, reported = None, time.monotonic()
    try:
        while any(p.is_alive() for p in processes):
            _drain(shared, errors)
            for job, process in zip(jobs, processes, strict=True):
                if process.exitcode in (None, 0) or _outage(errors) or job.index in dead:
                    continue
                dead.add(job.index)
                if process.exitcode < 0:  # killed by a signal (kill -9, the OOM killer): it could say nothing itself
                    alive = sum(p.is_alive() for p in processes)
                    logger.warning(
                        "worker %d (pid %s) exited with code %s; %d worker(s) left",
                        job.index,
                        process.pid,
                        process.exitcode,
                        alive,
                    )
                retry_abandoned(
                    study, shared, job.index, f"its worker exited with code {process.exitcode}", pid=process.pid
                )
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
    for job, process in zip(jobs, processes, strict=True):
        if process.exitcode != 0:
            retry_abandoned(
                study, shared, job.index, f"its worker exited with code {process.exitcode}", pid=process.pid
            )
    if errors:
        raise errors[0]
    if shared.tickets.value > 0 and not shared.closing.is_set():
        codes = ", ".join(str(p.exitcode) for p in processes)
        raise SearchError(
            f"every worker of study {study.study_name!r} exited before the run was done (exit codes {codes})."
        )


def _outage_behind(error: BaseException | None) -> StorageOutage | None:
    while error is not None and not isinstance(error, StorageOutage):
        error = error.__context__
    return error


def _outage(errors: list[BaseException]) -> bool:
    return bool(errors) and isinstance(errors[0], StorageOutage)


def _drain(shared: RunState, errors: list[BaseException]) -> None:
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
def stop_on_sigint(shared: RunState) -> Iterator[threading.Event]:
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
    if startup_interrupted():  # a Ctrl-C before this handler that Python dropped (search.run.interrupts)
        signal.signal(signal.SIGINT, previous)
        raise KeyboardInterrupt
    try:
        yield interrupted
    finally:
        signal.signal(signal.SIGINT, previous)
