"""The counters a run's parent and its workers share: tickets (how many trials may still start), what each
worker holds, and the run's progress as the parent reports it.

A ticket is claimed before a trial starts and settled by its outcome: a finished trial counts, a
failed one gives its ticket back. Named fields, one lock: the parent (search.run.runner) and the
workers (search.run.workers) read the same state through these methods alone.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from optuna.trial import TrialState

STOP_POLL_SECONDS = 0.2  # how often a worker waiting for a ticket looks again


@dataclass(frozen=True)
class RunProgress:
    """What a progress display shows while a run goes on."""

    n_done: int  # trials this run added that finished (complete or pruned)
    n_trials: int | None  # how many it was asked to add; None: as many as fit in `timeout`
    n_running: int  # trials training right now in this run's workers
    best_value: float | None  # best (first-objective) value in the study so far
    elapsed: float  # seconds since the run started
    timeout: float | None = None  # seconds after which no new trial starts

    @property
    def seconds_left(self) -> float | None:
        """An estimate of the time to the run's end (running trials still finish), or None before a
        trial has finished in a run without a timeout."""
        estimates = []
        if self.n_trials is not None and self.n_done > 0:
            estimates.append(self.elapsed / self.n_done * (self.n_trials - self.n_done))
        if self.timeout is not None:
            estimates.append(max(self.timeout - self.elapsed, 0.0))
        return min(estimates) if estimates else None


# ---------------------------------------------------------------------------------------------------
# State shared by the parent and its workers.


@dataclass(frozen=True)
class Outcomes:
    """How the trials this run started have ended so far."""

    complete: int
    pruned: int
    failed: int


class RunState:
    """Counters in shared memory: tickets left, outcomes, the best value, each worker's current trial.

    `n_trials` None is a run bounded by its timeout alone: every claim gets a ticket until the deadline.
    """

    def __init__(
        self,
        ctx: Any,
        *,
        n_trials: int | None,
        n_workers: int,
        best: float | None,
        maximize: bool,
        timeout: float | None = None,
    ) -> None:
        self.n_trials = n_trials
        self.timeout = timeout
        self.lock = ctx.Lock()
        self.tickets = ctx.Value("i", n_trials or 0, lock=False)  # trials still to start (when counted)
        self.complete = ctx.Value("i", 0, lock=False)
        self.pruned = ctx.Value("i", 0, lock=False)
        self.failed = ctx.Value("i", 0, lock=False)
        self.best = ctx.Value("d", float("nan") if best is None else best, lock=False)
        self.maximize = maximize
        self.current = ctx.Array("i", [-1] * n_workers, lock=False)  # trial id each worker trains, -1: none
        self.claimed = ctx.Array("b", n_workers, lock=False)  # 1 while a worker holds a ticket
        self.closing = ctx.Event()  # start no new trial
        self.stop = ctx.Event()  # stop the running trials after their current epoch
        self.messages = ctx.Queue()  # ("error", exception) and ("log", LogRecord) from workers

    def claim(self, worker: int, deadline: float | None) -> bool:
        """Take a ticket for one more trial, unless the run is closing, past its deadline or done.

        With no ticket left but another worker's trial still open, wait: that trial may fail, or its
        worker die, and give its ticket back; were this worker gone by then, nobody would take it.
        """
        while True:
            if deadline is not None and time.time() >= deadline:
                self.closing.set()  # --timeout: the run closes for every worker, and the parent knows why they stop
            if self.closing.is_set():
                return False
            with self.lock:
                if self.n_trials is None or self.tickets.value > 0:
                    self.tickets.value -= self.n_trials is not None
                    self.claimed[worker] = 1
                    return True
                if not any(held for other, held in enumerate(self.claimed) if other != worker):
                    return False
            time.sleep(STOP_POLL_SECONDS)

    def finish(self, worker: int, state: TrialState | None, value: float | None) -> None:
        """Record a trial's outcome; a trial that did not finish gives its ticket back."""
        with self.lock:
            self.current[worker] = -1
            self.claimed[worker] = 0
            self._count(state, value)

    def held(self, worker: int) -> tuple[bool, int]:
        """Whether `worker` holds a ticket, and the id of the trial it said it trains (-1: none).

        A dead worker's ticket stays held until `release_dead_worker` says what became of its trial: the worker
        may have died before its trial started (before `current` was set), or after the trial's end
        was recorded; meanwhile the other workers wait for it (see `claim`).
        """
        with self.lock:
            return bool(self.claimed[worker]), self.current[worker]

    def release_dead_worker(self, worker: int, state: TrialState | None, value: float | None) -> None:
        """Release a dead worker's ticket: a finished trial counts, anything else gives the ticket back
        (None: no trial was started with it, so nothing failed either)."""
        with self.lock:
            self.current[worker] = -1
            self.claimed[worker] = 0
            if state is None:
                self.tickets.value += self.n_trials is not None
            else:
                self._count(state, value)

    def _count(self, state: TrialState | None, value: float | None) -> None:  # under self.lock
        if state == TrialState.COMPLETE:
            self.complete.value += 1
        elif state == TrialState.PRUNED:
            self.pruned.value += 1
        else:
            self.failed.value += 1
            self.tickets.value += self.n_trials is not None
        if state == TrialState.COMPLETE and value is not None:
            old = self.best.value
            if old != old or (value > old if self.maximize else value < old):  # old != old: NaN, no best yet
                self.best.value = value

    def outcomes(self) -> Outcomes:
        with self.lock:
            return Outcomes(self.complete.value, self.pruned.value, self.failed.value)

    def progress(self, elapsed: float) -> RunProgress:
        with self.lock:
            best = self.best.value
            return RunProgress(
                n_done=self.complete.value + self.pruned.value,
                n_trials=self.n_trials,
                n_running=sum(t != -1 for t in self.current),
                best_value=None if best != best else best,
                elapsed=elapsed,
                timeout=self.timeout,
            )
