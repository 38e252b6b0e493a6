"""Keep a training process's freed memory in its heap, so that a training step does not page-fault.

A training step allocates and frees the same activations and gradients every step (on the recipe, a
few hundred KiB to 5 MiB each). glibc serves such sizes with a fresh `mmap` (above its 128 KiB
threshold), or with heap memory it hands back to the system as soon as the top of the heap is free;
either way the next step touches new pages, and each page costs a fault, dear in a virtual machine.
Measured on B (AMD EPYC, 2 cores, KVM guest; recipe step, one thread, CPU time): 1,100-1,500 faults and
34.3-34.6 ms per step as glibc comes, 40-80 faults and 28.4-29.0 ms (1.2x) with both thresholds raised,
the same peak memory (360-371 MiB). Raising the trim threshold alone made it worse (9,900 faults, 53 ms):
it also turns off glibc's adaptive mmap threshold, so every large block became an `mmap`.

So: blocks below 32 MiB (glibc's largest threshold on 64-bit) come from the heap, and freed memory stays
there for the next step. A search worker still hands it back between trials (`search.memory.release_memory`
calls `malloc_trim(0)`, which ignores the threshold), so its footprint stays flat from trial to trial.
"""

from __future__ import annotations

import ctypes
import functools
import os

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)
MMAP_THRESHOLD = 32 << 20  # glibc's maximum on 64-bit: larger values are refused
TRIM_THRESHOLD = 1 << 30  # keep up to 1 GiB of free heap top; far above a trial's working set


@functools.cache
def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds for this process, once; True where it took effect
    (glibc), False elsewhere (musl, macOS, Windows: their allocators are left as they are)."""
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION"):
            return False
        mallopt = ctypes.CDLL(None).mallopt
    except (AttributeError, ValueError, OSError):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
