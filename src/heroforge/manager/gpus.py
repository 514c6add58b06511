"""How many GPUs a job trains on under a supervisor that has fewer than the job asked for.

A spot user who gets 4 GPUs back instead of 8 should not wait for 8: a run that has started can
go on with any count its global minibatch's chunks split over (Config.on_gpus: the same chunks,
more of them per GPU), which `heroforge train --resume RUN --gpus M` does. A job that has not
started yet waits for the count it asked for: nothing is lost by starting it as specified.
"""

from __future__ import annotations

from heroforge import rundir
from heroforge.config import config_from_toml
from heroforge.errors import UserError
from heroforge.manager.queue import Job


def gpus_to_run(job: Job, available: int) -> int | None:
    """The GPUs `job` runs on with `available` of them: its own count when there are enough,
    else (a started run) the largest count <= available its chunks split over; None = wait."""
    if job.gpus <= available:
        return job.gpus
    if rundir.find_run_dir(job.dir / "runs") is None:
        return None
    try:
        cfg = config_from_toml((job.dir / "config.toml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, UserError):
        return None  # the supervisor reports an unreadable config once it claims the job
    counts = [n for n in cfg.train.gpu_counts() if n <= available]
    return max(counts) if counts else None
