"""The CPU threads a job's trainer gets: its share of this supervisor's cores.

torch starts one thread per core in every process. Two supervisors on one machine each ran a
trainer with a thread per core, and both crawled (issue 26: 150-300 s/kimg each against 17-21
alone; with one thread each, the pair finished in about 45 s each). So the supervisor decides:
`manager run --cpus N` (or HEROFORGE_CPUS) gives its jobs N cores; without it, a thread count
the user set (OMP_NUM_THREADS) is kept; else the jobs get the cores this supervisor may run on
(its CPU affinity, as `taskset -c` or systemd's CPUAffinity= set it). A job of several
processes splits its share between them. The child learns its count from OMP_NUM_THREADS,
which torch sizes its thread pool from (and which heroforge's own launcher passes on to each
worker); training records the count it ran with in every stats tick ("threads").
"""

from __future__ import annotations

import os
from collections.abc import Mapping

CPUS_ENV = "HEROFORGE_CPUS"  # the default of `manager run --cpus`
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask; all of them where unknown)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # no affinity on this system
        return os.cpu_count() or 1


def child_thread_env(env: Mapping[str, str], cpus: int | None, processes: int) -> dict[str, str]:
    """The thread settings for a child of `processes` processes; {} keeps the user's own
    OMP_NUM_THREADS (cpus None: no --cpus was given)."""
    if cpus is None and env.get("OMP_NUM_THREADS"):
        return {}
    threads = max(1, (cpus or usable_cores()) // max(1, processes))
    return {name: str(threads) for name in THREAD_VARIABLES}
