"""Keep a search worker's memory flat over hundreds of trials.

A worker trains one configuration after another in one long-lived process. Measured on the 2-core
machine (siamese trials, one torch thread), two things made its resident memory grow from trial to
trial although every trial frees its fold models:

- oneDNN's primitive cache and PyTorch's ideep cache keep up to 1,024 compiled convolution kernels
  each, one per layer shape and batch size: every new tower width or batch size left ~5-10 MiB
  behind. Capped at `KERNEL_CACHE_CAPACITY` the memory stops growing after a few trials, and
  training is as fast (a trial reuses far fewer kernels than that).
- glibc keeps the memory a trial freed in its heap (100-200 MiB after a wide tower) and hands it
  back to the system only when the top of the heap is free. `malloc_trim(0)` between trials returns
  it, so every trial starts from the same footprint. (A fixed M_MMAP_THRESHOLD of 0.5-2 MiB would
  return memory during a trial too, but made training 1.2-2x slower for 5-10 % less peak: every
  activation became a fresh mmap. Disabling fastbins and tcache saved ~20 MiB for ~7 % more time.)

What is left of a worker's peak is the trial itself: its fold models and one batch's activations,
so it depends on the configuration (on siamese up to about 540 MiB, the widest towers highest).
"""

from __future__ import annotations

import ctypes
import functools
import os
from collections.abc import Callable

KERNEL_CACHE_CAPACITY = 64  # compiled kernels per cache; the defaults are 1,024
_CACHE_VARIABLES = ("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "LRU_CACHE_CAPACITY")  # oneDNN's and PyTorch ideep's


def limit_kernel_caches(capacity: int = KERNEL_CACHE_CAPACITY) -> None:
    """Cap the convolution kernel caches of this process, unless the environment sets them already.

    The libraries read these variables when they build their first kernel: call this before the
    process trains anything.
    """
    for name in _CACHE_VARIABLES:
        os.environ.setdefault(name, str(capacity))


def release_memory() -> None:
    """Return the free pages of the heap to the system (glibc; a no-op elsewhere): 3-25 ms after a trial.

    No `gc.collect()` first: a trial's tensors are freed by reference counting when it returns (a full
    collection freed nothing measurable and cost 0.15-0.5 s a trial).
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's malloc_trim, or None under another C library (musl, macOS, Windows)."""
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION"):
            return None
    except (AttributeError, ValueError, OSError):  # no confstr (Windows) or no such name (macOS)
        return None
    return getattr(ctypes.CDLL(None), "malloc_trim", None)
