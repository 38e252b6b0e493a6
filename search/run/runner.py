"""Run a study: N new finished trials with W worker processes on one storage.

`n_trials` counts the trials this call adds that finish COMPLETE or PRUNED, over all its workers:
each worker takes a ticket from a shared counter before it asks Optuna for a trial, and gives it
back when the trial fails (interrupted, an error, a dead worker), so the total is exact. Without it,
`timeout` alone bounds the run: trials start until the deadline.

Stopping: the first Ctrl-C stops every trial after its current epoch (they end FAILED, reason
"interrupted"), a second one stops at once; a trial a dead worker left RUNNING is failed on the way
out. Workers of other `search run` processes (other machines) join the same study through PostgreSQL.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import BaseStorage
from optuna.trial import TrialState

from search.errors import SearchError, StorageError, StorageOutage, check_at_least
from search.run.forkserver import process_context, start_helper_processes
from search.run.recovery import fail_dead_trials, fail_leftovers
from search.run.speed import run_layout, study_speed
from search.run.study_data import load_study_data
from search.run.tickets import RunProgress, RunState
from search.run.workers import WorkerJob, run_processes, stop_on_sigint
from search.storage.leases import fail_expired_leases
from search.storage.studies import (
    check_heartbeat,
    mask_url,
    maximizes,
    open_storage,
    rank_trials,
    resolve_storage_url,
)
from search.study.definition import DEFINITION_ATTR, StudyDefinition

__all__ = ["RunProgress", "RunSummary", "prepare_study", "run_study"]

logger = logging.getLogger(__name__)

OPTUNA_MAJOR_ATTR = "optuna_major"  # study user attr: the Optuna major that created the study
ATTRS_WAIT_SECONDS = 5.0  # how long a joining worker waits for the creator to write the study's attrs


@dataclass(frozen=True)
class RunSummary:
    """The outcome of `run_study`."""

    study_name: str
    storage_url: str  # password masked
    n_trials: int | None  # asked for; None: as many as the timeout allowed
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
        best = (
            "no complete trial yet"
            if self.best_value is None
            else f"best value {self.best_value:.4f} (trial {self.best_number})"
        )
        stopped = " (interrupted)" if self.interrupted else ""
        asked = "" if self.n_trials is None else f"/{self.n_trials}"
        return (
            f"study {self.study_name}: {self.n_added}{asked} new finished trials{stopped} "
            f"({self.n_complete} complete, {self.n_pruned} pruned, {self.n_failed} failed) in {self.elapsed:.1f} s; "
            f"{best} of {self.n_finished_total} finished; storage {self.storage_url}"
        )


def run_study(
    definition: StudyDefinition,
    *,
    storage_url: str | None = None,
    n_trials: int | None,
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
    """Create or resume the study `definition.name` and add `n_trials` finished trials to it (None: as
    many as start before `timeout`; one of the two is needed).

    `seed` sets the sampler seed only (worker i samples with seed + i, shifted on a resumed
    study so it does not replay the first run's samples). Without it each process draws its own
    seed, so `search run` processes started together on several machines (or compose replicas)
    do not propose the same configurations; pass `seed` for a reproducible run. The training
    draw and the folds always follow the definition, so every trial is scored on the same data.
    `timeout` stops starting new trials after that many seconds; running ones finish. A database
    that stops answering is waited for, up to `max_outage` seconds (search.storage.studies), then the run
    ends with `StorageOutage`: its finished trials are stored, and the next run retries the rest.
    """
    _check_run_args(n_trials, n_workers, threads, timeout)
    url = resolve_storage_url(storage_url)
    storage = open_storage(url, heartbeat_interval=heartbeat_interval, grace_period=grace_period, max_outage=max_outage)
    data = load_study_data(definition, data_dir)  # a bad --data-dir fails here, once
    study = prepare_study(storage, definition, data=data.identity)
    fail_dead_trials(study)
    fail_expired_leases(study, check_heartbeat(heartbeat_interval, grace_period)[1])  # behind a proxy
    layout = run_layout(definition, n_workers, threads)  # neither given: measured once per machine
    n_workers, threads = layout.workers, layout.threads
    speed = study_speed(definition, threads=threads).speed  # measured once per machine, before any worker runs
    n_existing = len(study.get_trials(deepcopy=False))
    if seed is None:
        seed = definition.seed + secrets.randbelow(2**31)  # distinct across processes and machines
    base_seed = seed + 1000 * n_existing  # a resumed run samples anew

    ctx = process_context()
    start_helper_processes(ctx)
    shared = RunState(
        ctx,
        n_trials=n_trials,
        n_workers=n_workers,
        best=_best_value(study),
        maximize=maximizes(study.directions),
        timeout=timeout,
    )
    jobs = [
        WorkerJob(
            index=i,
            definition=definition,
            storage_url=url,
            data=data,
            sampler_seed=base_seed + i,
            threads=threads,
            speed=speed,
            heartbeat_interval=heartbeat_interval,
            grace_period=grace_period,
            max_outage=max_outage,
            verbose=verbose,
            deadline=None if timeout is None else time.time() + timeout,
        )
        for i in range(n_workers)
    ]
    started = time.monotonic()

    def report() -> None:
        if on_progress is not None:
            on_progress(shared.progress(time.monotonic() - started))

    report()
    with stop_on_sigint(shared) as interrupted:
        try:  # one worker too: a worker process holds no scikit-learn, data files or display (docs/performance.md, the search service)
            run_processes(ctx, jobs, shared, study, report)
        except KeyboardInterrupt:  # the second Ctrl-C: Optuna has failed the running trial already
            interrupted.set()
        except StorageOutage:  # nothing can be written: the next run fails and retries the trials left RUNNING
            raise
        except BaseException:
            fail_leftovers(study, shared)
            raise
        fail_leftovers(study, shared)
    report()
    return _summary(study, url, shared, n_trials, time.monotonic() - started, interrupted.is_set())


def prepare_study(
    storage: BaseStorage, definition: StudyDefinition, *, data: Mapping[str, str] | None = None
) -> optuna.Study:
    """Create the study named after the definition, or load it after checking it is the same one.

    A study created from another definition (fingerprint), on other digits (`data`, from
    `search.run.study_data.data_identity`), or by another Optuna major, is refused: trials of different searches
    are never mixed. The study keeps the resolved definition it was created from (DEFINITION_ATTR):
    later commands (`show`, `evaluate-best`, `report`) read its cells and evaluate_epochs from there.
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
        if DEFINITION_ATTR not in storage.get_study_user_attrs(study_id):  # created before studies kept it
            storage.set_study_user_attr(study_id, DEFINITION_ATTR, definition.to_stored())
    else:
        for key, value in {**attrs, DEFINITION_ATTR: definition.to_stored(), OPTUNA_MAJOR_ATTR: major}.items():
            storage.set_study_user_attr(study_id, key, value)
        study = optuna.load_study(study_name=definition.name, storage=storage)
        for params in definition.enqueue:  # the definition's starting points run first
            study.enqueue_trial(params, skip_if_exists=True)
        logger.info("created study %s (%d starting points queued)", definition.name, len(definition.enqueue))
        return study
    return optuna.load_study(study_name=definition.name, storage=storage)


def _check_existing(
    storage: BaseStorage, study_id: int, definition: StudyDefinition, attrs: Mapping[str, Any], major: str
) -> None:
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
            "mixed: resume it as it was created with --stored-definition, start it again after `search delete "
            f"--study {definition.name}`, give the edited TOML another name, or use another --storage."
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


def _check_run_args(n_trials: int | None, n_workers: int | None, threads: int | None, timeout: float | None) -> None:
    if n_trials is None and timeout is None:
        raise SearchError(
            "give --trials (new finished trials to add), --timeout (seconds to start trials for), or both."
        )
    check_at_least("--trials", n_trials, why=" (new finished trials to add)")
    check_at_least("--workers", n_workers)
    check_at_least("--threads", threads)
    if timeout is not None and timeout <= 0:
        raise SearchError(f"--timeout must be a positive number of seconds, but got {timeout:g}.")


# ---------------------------------------------------------------------------------------------------
# Summaries.


def _best_value(study: optuna.Study) -> float | None:
    best = rank_trials(study, top=1)
    return best[0].values[0] if best else None


def _summary(
    study: optuna.Study, url: str, shared: RunState, n_trials: int | None, elapsed: float, interrupted: bool
) -> RunSummary:
    ranked = rank_trials(study, top=1)
    outcomes = shared.outcomes()
    best = ranked[0] if ranked else None
    finished = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
    return RunSummary(
        study_name=study.study_name,
        storage_url=mask_url(url),
        n_trials=n_trials,
        n_complete=outcomes.complete,
        n_pruned=outcomes.pruned,
        n_failed=outcomes.failed,
        n_finished_total=len(finished),
        best_value=None if best is None else best.values[0],
        best_number=None if best is None else best.number,
        best_params={} if best is None else dict(best.params),
        elapsed=elapsed,
        interrupted=interrupted,
    )
