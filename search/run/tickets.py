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
    n_trials: int  # how many it was asked to add
    n_running: int  # trials training right now in this run's workers
    best_value: float | None  # best (first-objective) value in the study so far
    elapsed: float  # seconds since the run started


# ---------------------------------------------------------------------------------------------------
# State shared by the parent and its workers.


class Shared:
    """Counters in shared memory: tickets left, outcomes, the best value, each worker's current trial."""

    def __init__(self, ctx: Any, *, n_trials: int, n_workers: int, best: float | None, maximize: bool) -> None:
        self.n_trials = n_trials
        self.lock = ctx.Lock()
        self.tickets = ctx.Value("i", n_trials, lock=False)  # trials still to start
        self.counts = ctx.Array("i", 3, lock=False)  # complete, pruned, failed
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
                if self.tickets.value > 0:
                    self.tickets.value -= 1
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

        A dead worker's ticket stays held until `settle` says what became of its trial: the worker
        may have died before its trial started (before `current` was set), or after the trial's end
        was recorded; meanwhile the other workers wait for it (see `claim`).
        """
        with self.lock:
            return bool(self.claimed[worker]), self.current[worker]

    def settle(self, worker: int, state: TrialState | None, value: float | None) -> None:
        """Release a dead worker's ticket: a finished trial counts, anything else gives the ticket back
        (None: no trial was started with it, so nothing failed either)."""
        with self.lock:
            self.current[worker] = -1
            self.claimed[worker] = 0
            if state is None:
                self.tickets.value += 1
            else:
                self._count(state, value)

    def _count(self, state: TrialState | None, value: float | None) -> None:  # under self.lock
        if state in (TrialState.COMPLETE, TrialState.PRUNED):
            self.counts[0 if state == TrialState.COMPLETE else 1] += 1
        else:
            self.counts[2] += 1
            self.tickets.value += 1
        if state == TrialState.COMPLETE and value is not None:
            old = self.best.value
            if old != old or (value > old if self.maximize else value < old):  # old != old: NaN, no best yet
                self.best.value = value

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
