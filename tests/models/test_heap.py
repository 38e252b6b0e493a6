"""models/heap.py: a training step that does not page-fault, and a worker that still hands memory back.

Each test runs in a fresh interpreter: the allocator's thresholds are per process and cannot be undone."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from search.memory import _malloc_trim

pytestmark = pytest.mark.skipif(_malloc_trim() is None, reason="the thresholds are glibc's; elsewhere nothing is set")


def _python(code: str) -> str:
    """The last line `code` prints in a fresh interpreter."""
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.strip().splitlines()[-1]


FAULTS_PER_STEP = """
    import resource, sys
    import models.heap, models.train
    if {off}:  # glibc as it comes: what training did before models/heap.py
        models.train.keep_freed_memory = lambda: False
    import torch
    torch.set_num_threads(1)
    from models.speed import RECIPE_NET, RECIPE_TRAIN, probe_timer
    from models.train import Speed
    time_once = probe_timer(RECIPE_NET, RECIPE_TRAIN, steps=2)
    time_once(Speed(channels_last=True))  # builds the trainer (which sets the thresholds) and warms it
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(5):
        time_once(Speed(channels_last=True))
    print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 10, models.heap.keep_freed_memory())
"""


def test_training_steps_reuse_their_memory_instead_of_faulting_in_new_pages() -> None:
    as_it_comes, _ = _python(FAULTS_PER_STEP.format(off=True)).split()
    kept, took_effect = _python(FAULTS_PER_STEP.format(off=False)).split()
    assert took_effect == "True"
    # On B: 1,100-1,500 faults a step as glibc comes, 40-80 with the thresholds raised.
    assert float(kept) < 0.25 * float(as_it_comes), (kept, as_it_comes)


def test_release_memory_still_hands_a_trial_s_freed_memory_back() -> None:
    start, freed, released = map(
        float,
        _python(
            """
            import psutil
            from models.heap import keep_freed_memory
            from search.memory import release_memory

            def rss_mib():
                return psutil.Process().memory_info().rss / 2**20

            assert keep_freed_memory()
            blocks = [b"x" * 4_000_000 for _ in range(60)]  # 240 MiB of 4 MB activations, from the heap now
            start = rss_mib()
            del blocks
            freed = rss_mib()
            release_memory()
            print(start, freed, rss_mib())
            """
        ).split(),
    )
    assert freed > start - 40  # kept in the heap for the next step: that is the point
    assert released < freed - 200  # and handed back between trials
