"""Jobs trained in this process, or in a pool of worker processes, each result yielded as soon as it is done.

Evaluation draws (search.evaluation.draw_training) and the selection stage's K-fold repeats (search.evaluation.selection) both
run this way, so that the caller can store each result before the next one ends.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

Key = TypeVar("Key")
Result = TypeVar("Result")


def run_jobs(
    function: Callable[..., Result],
    jobs: Sequence[tuple[Key, Mapping[str, Any]]],
    *,
    workers: int,
    threads: int | None,
) -> Iterator[tuple[Key, Result]]:
    """Call `function(**kwargs, threads=...)` for each (key, kwargs) and yield (key, result) as each ends.

    With one worker (or one job) the jobs run here, with `threads` torch threads (None: torch's default);
    otherwise in `workers` spawned processes, with `threads` or 1 each (two processes of all cores each
    would oversubscribe the CPU).
    """
    if workers == 1 or len(jobs) <= 1:
        for key, kwargs in jobs:
            yield key, function(**kwargs, threads=threads)
        return
    # spawn, not fork: a forked copy of a process that already ran torch can deadlock in its thread pools.
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=context) as pool:
        futures = {pool.submit(function, **kwargs, threads=threads or 1): key for key, kwargs in jobs}
        try:
            for future in concurrent.futures.as_completed(futures):
                yield futures[future], future.result()
        except BaseException:
            for future in futures:
                future.cancel()
            raise
