"""Process-wide tuning for running the networks on the CPU; entry points opt in explicitly.

glibc's malloc serves every block above 32 MB with a fresh mmap and unmaps it on free. The
activations of a 256 px training step are 30-130 MB each, so every step the kernel maps, zeroes
and page-faults gigabytes again: measured here, 2.3 s of system time in a 3.5 s generator
forward + backward at 256 px. Keeping freed memory in the heap for reuse removes all of it
(2.2 s, no system time). The cost is that the process keeps its peak memory until it exits,
which a short-lived generating process can afford.

Training is the other way round: its phases (G, path length, D, R1) each build and free a
different set of activations, and a heap that keeps every freed block fragments and grows well
past any single phase (2.56 GB peak at 64 px "auto", batch 8). Handing the free heap back after
each optimiser step keeps the peak near the largest phase (1.86 GB), at the price of page faults
when the next phase touches that memory again (+7% time at 64 px). The tiny preset frees only
20-30 MB per phase and would pay the page faults for nothing (+20% time measured), so
release_freed_memory() only trims when more lies free.
"""

from __future__ import annotations

import ctypes
import functools
import sys

_M_TRIM_THRESHOLD = -1  # mallopt parameter numbers, from glibc's malloc.h
_M_MMAP_MAX = -4
_INT_MAX = 2**31 - 1
RELEASE_MIN_FREE_MB = 64  # below this much free heap, trimming costs more than it returns


class _MallInfo2(ctypes.Structure):
    """glibc's struct mallinfo2 (malloc.h, glibc >= 2.33): every field a size_t."""

    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            *("arena", "ordblks", "smblks", "hblks", "hblkhd"),
            *("usmblks", "fsmblks", "uordblks", "fordblks", "keepcost"),
        )
    ]


def keep_freed_memory() -> bool:
    """Make glibc malloc reuse freed large blocks instead of returning them to the kernel.

    Returns whether it applied: False off Linux, or with a C library without mallopt.
    """
    libc = _libc()
    mallopt = getattr(libc, "mallopt", None)
    if mallopt is None:
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    # No mmap for large blocks (they come from the heap and go back to it), and never trim
    # the heap's free top back to the kernel.
    return bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, _INT_MAX))


def _libc() -> ctypes.CDLL | None:
    """The C library this Python already uses, on Linux (where glibc is what these tune)."""
    return _load_libc() if sys.platform.startswith("linux") else None


@functools.cache
def _load_libc() -> ctypes.CDLL | None:
    # Loaded once: release_freed_memory runs after every optimiser step.
    try:
        libc = ctypes.CDLL(None)
    except OSError:
        return None
    if hasattr(libc, "mallinfo2"):
        libc.mallinfo2.restype = _MallInfo2
    if hasattr(libc, "malloc_trim"):
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
    return libc


def release_freed_memory(min_free_mb: float = RELEASE_MIN_FREE_MB) -> bool:
    """Give the heap's free memory back to the kernel when more than min_free_mb lies free.

    Returns whether it trimmed: False off Linux, with a C library without mallinfo2 and
    malloc_trim, or when too little was free to be worth the page faults of using it again.
    """
    libc = _libc()
    if libc is None or not hasattr(libc, "mallinfo2") or not hasattr(libc, "malloc_trim"):
        return False
    free_bytes = libc.mallinfo2().fordblks  # free bytes inside the heap's arenas
    if free_bytes < min_free_mb * 2**20:
        return False
    libc.malloc_trim(0)
    return True
