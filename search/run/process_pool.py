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
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from search.run.forkserver import process_context, start_helper_processes, start_pool_worker

__all__ = ["JobPool", "own_pool"]

Key = TypeVar("Key")
Result = TypeVar("Result")


class JobPool:
    """`workers` processes of `threads` torch threads each, started when a round first needs them and kept
    until the `with` block ends. Use as a context manager."""

    def __init__(self, *, workers: int, threads: int | None) -> None:
        self.workers = workers
        self.threads = threads
        self._executor: concurrent.futures.ProcessPoolExecutor | None = None

    def __enter__(self) -> JobPool:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

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
                yield key, function(**kwargs, threads=self.threads)
            return
        if self._executor is None:
            # Not forked from this process: a forked copy of a process that already ran torch can deadlock in
            # its thread pools. The fork server never ran it.
            context = process_context()
            start_helper_processes(context)
            self._executor = concurrent.futures.ProcessPoolExecutor(
                max_workers=self.workers, mp_context=context, initializer=start_pool_worker
            )
        futures = {self._executor.submit(function, **kwargs, threads=self.threads or 1): key for key, kwargs in jobs}
        try:
            for future in concurrent.futures.as_completed(futures):
                yield futures[future], future.result()
        except BaseException:
            for future in futures:
                future.cancel()
            raise


def own_pool(pool: JobPool | None, *, workers: int, threads: int | None) -> contextlib.AbstractContextManager[JobPool]:
    """A caller's pool, left open for its next stage; or, without one, a pool of this stage's own."""
    return contextlib.nullcontext(pool) if pool is not None else JobPool(workers=workers, threads=threads)
