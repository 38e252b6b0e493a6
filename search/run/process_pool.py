"""Jobs trained in this process, or in a pool of worker processes, each result yielded as soon as it is done.

Evaluation draws (search.evaluation.draw_training) and the selection stage's K-fold repeats
(search.evaluation.selection) both run this way, so that the caller can store each result before the next
one ends. A stage trains in rounds (what it claimed, then what is still missing); its `JobPool` keeps the
same worker processes for all of them, so that each worker reads the digits once per stage, not once per
round. The workers fork from the product's fork server (search.run.forkserver), torch already imported.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import multiprocessing
import os
import signal
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from search.run.forkserver import process_context, run_interruptibly, start_helper_processes, start_pool_worker
from search.run.interrupts import interrupts_deferred, raise_if_interrupted

__all__ = ["JobPool", "own_pool"]

# How often a wait for jobs looks for a Ctrl-C that Python dropped where it landed (search.run.interrupts):
# inside a weakref callback, as imports and garbage collection run them, it would otherwise go unseen
# until every job had trained.
INTERRUPT_POLL_SECONDS = 0.5
Key = TypeVar("Key")
Result = TypeVar("Result")


class JobPool:
    """`workers` processes of `threads` torch threads each, started when a round first needs them and kept
    until the `with` block ends. Use as a context manager."""

    def __init__(self, *, workers: int, threads: int | None) -> None:
        self.workers = workers
        self.threads = threads
        self._executor: concurrent.futures.ProcessPoolExecutor | None = None
        self._stopping: Any = None  # an Event the workers read (search.run.forkserver.run_interruptibly)

    def __enter__(self) -> JobPool:
        return self

    def __exit__(self, error_type: type[BaseException] | None, *exc: object) -> None:
        if self._executor is not None:
            if error_type is not None:  # a Ctrl-C or a failed job: stop the jobs in flight instead of waiting
                self._stop_jobs()
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def _stop_jobs(self) -> None:
        """End the workers' jobs now: the queued ones are not started (the stop flag), the running ones get
        the Ctrl-C a terminal sends. A worker that was idle at the user's own Ctrl-C ignored it, and would
        otherwise take a queued job and train it in full before the pool can close."""
        self._stopping.set()
        for worker in multiprocessing.active_children():  # this command's children: the pool's workers
            with contextlib.suppress(ProcessLookupError):
                os.kill(worker.pid, signal.SIGINT)

    def _started(self) -> concurrent.futures.ProcessPoolExecutor:
        """The pool, its worker processes started on the first call, each whole before any job is queued.

        A Ctrl-C inside `Process.start` (which waits seconds for the fork server's first imports) would
        leave a process that nobody joins, and it fails with a traceback once the command has gone; one
        after a job is queued would leave that job to train in full before the pool can close. So the start
        holds a Ctrl-C back until every worker is up, with no job queued, and raises it then.
        """
        if self._executor is None:
            # Not forked from this process: a forked copy of a process that already ran torch can deadlock in
            # its thread pools. The fork server never ran it.
            context = process_context()
            start_helper_processes(context)
            with interrupts_deferred():
                self._stopping = context.Event()
                self._executor = concurrent.futures.ProcessPoolExecutor(
                    max_workers=self.workers,
                    mp_context=context,
                    initializer=start_pool_worker,
                    initargs=(self._stopping,),
                )
                # The pool starts a process per job while none is idle: a short hold in each keeps the first
                # ones busy while the next are started.
                concurrent.futures.wait([self._executor.submit(time.sleep, 0.2) for _ in range(self.workers)])
        return self._executor

    def run(
        self, function: Callable[..., Result], jobs: Sequence[tuple[Key, Mapping[str, Any]]]
    ) -> Iterator[tuple[Key, Result]]:
        """Call `function(**kwargs, threads=...)` for each (key, kwargs) and yield (key, result) as each ends.

        With one worker (or one job) the jobs run here, with `threads` torch threads (None: torch's
        default); otherwise in the worker processes, with `threads` or 1 each (two processes of all cores
        each would oversubscribe the CPU).
        """
        if self.workers == 1 or len(jobs) <= 1:
            for key, kwargs in jobs:
                raise_if_interrupted()
                yield key, function(**kwargs, threads=self.threads)
            return
        executor = self._started()
        raise_if_interrupted()
        futures = {
            executor.submit(run_interruptibly, function, **kwargs, threads=self.threads or 1): key
            for key, kwargs in jobs
        }
        try:
            pending = set(futures)
            while pending:
                done, pending = concurrent.futures.wait(
                    pending, timeout=INTERRUPT_POLL_SECONDS, return_when=concurrent.futures.FIRST_COMPLETED
                )
                raise_if_interrupted()
                for future in done:
                    yield futures[future], future.result()
        except BaseException:
            for future in futures:
                future.cancel()
            raise


def own_pool(pool: JobPool | None, *, workers: int, threads: int | None) -> contextlib.AbstractContextManager[JobPool]:
    """A caller's pool, left open for its next stage; or, without one, a pool of this stage's own."""
    return contextlib.nullcontext(pool) if pool is not None else JobPool(workers=workers, threads=threads)
