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

Within a phase the heap still fragments: blocks freed by the backward pass are too small or in
the wrong place for the next request, so the heap grows about 200 MB past the live tensors.
Serving every block of 4 MB and more with its own mmap ends that (each is unmapped on free),
and transparent huge pages make those fresh mappings cheap: one page fault per 2 MB instead of
per 4 kB, and fewer TLB misses in the convolutions. Measured at 64 px "auto", batch 8 (main
step / peak RSS): glibc's defaults 15.5 s / 1,620 MB; mmap from 4 MB alone 15.5-18.8 s
(7 s of system time per step) / 1,514 MB; with huge pages as well 13.2 s / 1,524 MB.
glibc reads these settings (GLIBC_TUNABLES) only when a process starts, so `heroforge train`
starts itself again with them (training_allocator_env); HEROFORGE_MALLOC_TUNING=off opts out.
"""

from __future__ import annotations

import ctypes
import functools
import os
import platform
import sys
from collections.abc import Mapping

_M_TRIM_THRESHOLD = -1  # mallopt parameter numbers, from glibc's malloc.h
_M_MMAP_MAX = -4
_INT_MAX = 2**31 - 1
RELEASE_MIN_FREE_MB = 64  # below this much free heap, trimming costs more than it returns


# Huge pages (madvise) for malloc's memory, and blocks from 4 MB up in their own mappings.
TRAINING_TUNABLES = ("glibc.malloc.hugetlb=1", "glibc.malloc.mmap_threshold=4194304")
OPT_OUT = "HEROFORGE_MALLOC_TUNING"  # "off": leave the C library's allocator as it is


def training_allocator_env(env: Mapping[str, str]) -> dict[str, str] | None:
    """env with the training allocator settings added to GLIBC_TUNABLES, or None when there
    is nothing to do: not glibc (>= 2.35 knows hugetlb), opted out, or already set."""
    if not sys.platform.startswith("linux") or env.get(OPT_OUT, "").lower() == "off":
        return None
    libc, version = platform.libc_ver()
    if libc != "glibc" or tuple(int(v) for v in version.split(".")[:2]) < (2, 35):
        return None
    present = [t for t in env.get("GLIBC_TUNABLES", "").split(":") if t]
    names = {t.split("=")[0] for t in present}
    missing = [t for t in TRAINING_TUNABLES if t.split("=")[0] not in names]
    if not missing:
        return None  # already started with them (or the user set their own values)
    return {**env, "GLIBC_TUNABLES": ":".join(present + missing)}


def restart_with_training_allocator() -> None:
    """Replace this process by the same command with training_allocator_env, if that changes
    anything. Only for a process started as a command (it runs sys.orig_argv again)."""
    env = training_allocator_env(os.environ)
    if env is None:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, sys.orig_argv, env)


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
