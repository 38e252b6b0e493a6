"""A stage's pool of worker processes: forked from the fork server with torch loaded, and kept lean."""

from __future__ import annotations

import os

from evaluation_helpers import N_PAIRS, tiny_configs, train_repeat_and_list_modules

from search.run.folds import split_folds
from search.run.process_pool import JobPool


def test_pool_workers_start_with_torch_loaded_and_a_selection_repeat_never_imports_scikit_learn():
    """torch and torch._dynamo (which torch imports on a process's first optimizer) come from the fork
    server; the folds come from the parent, so the worker never imports scikit-learn (seconds each)."""
    net, train = tiny_configs()
    folds = split_folds(N_PAIRS, n_folds=2, seed=7)
    kwargs = {"net": net, "train": train, "seed": 7, "n_pairs": N_PAIRS, "folds": folds, "data_dir": None}
    with JobPool(workers=2, threads=1) as pool:
        results = dict(pool.run(train_repeat_and_list_modules, [(0, kwargs), (1, kwargs)]))

    assert sorted(results) == [0, 1]
    for before, accuracies, after in results.values():
        assert before == ["torch", "torch._dynamo"] and after == ["torch", "torch._dynamo"]
        assert len(accuracies) == 2 and all(a is not None and 0.0 <= a <= 1.0 for a in accuracies)
    assert results[0][1] == results[1][1]  # the same repeat twice, in two processes: the same folds, the same result


def test_one_worker_runs_the_jobs_in_this_process():
    pids = dict(JobPool(workers=1, threads=1).run(_pid, [(0, {}), (1, {})]))
    assert pids == {0: os.getpid(), 1: os.getpid()}


def _pid(*, threads: int | None) -> int:
    return os.getpid()
