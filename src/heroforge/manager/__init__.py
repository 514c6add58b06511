"""The training manager: a job queue and a supervisor that sees every job to its target kimg.

Layout of a manager root (default ~/.heroforge, or --root, or $HEROFORGE_ROOT):

    queue.sqlite3          the queue (WAL mode)
    jobs/0001/config.toml  the job's resolved config, frozen at submit time
    jobs/0001/train.log    everything its trainer printed, over all attempts
    jobs/0001/runs/NNNNN-name/   the training run folder (checkpoints, stats, samples)
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from heroforge.errors import UserError, write_failure
from heroforge.fileio import atomic_write_text
from heroforge.manager.queue import Job, Queue
from heroforge.manager.spec import JobSpec, fingerprint_data

QUEUE_FILE = "queue.sqlite3"


def default_root() -> Path:
    return Path(os.environ.get("HEROFORGE_ROOT") or Path.home() / ".heroforge")


def root_folder(root: Path | None = None) -> Path:
    """The manager root: the given one, else $HEROFORGE_ROOT, else ~/.heroforge."""
    return Path(root or default_root()).expanduser().resolve()


def has_queue(root: Path | None = None) -> bool:
    return (root_folder(root) / QUEUE_FILE).is_file()


def open_queue(root: Path | None = None, create: bool = True) -> Queue:
    """The queue of a manager root; with create=False a root without one is a UserError
    (commands that only read or steer jobs must not leave an empty queue at a mistyped
    --root)."""
    root = root_folder(root)
    if not create and not has_queue(root):
        raise UserError(f"no queue at {root}: nothing was submitted there (check --root)")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise write_failure(f"cannot create the manager root {root}", err) from None
    return Queue(root / QUEUE_FILE)


def submit(queue: Queue, spec: JobSpec, allow_duplicate: bool = False) -> Job:
    """Check the data, refuse a duplicate of an unfinished job, and queue the job."""
    fingerprint, count = fingerprint_data(spec.data, spec.cfg)
    if count == 0:
        raise UserError(f"the training data {spec.data} holds no images")
    twin = queue.find_duplicate(fingerprint, spec.config_sha, spec.target_kimg)
    if twin is not None and not allow_duplicate:
        raise UserError(
            f"job {twin.id} ({twin.state}) already trains this data with this config to "
            f"{twin.target_kimg:g} kimg (use --allow-duplicate to queue it again)"
        )
    jobs_dir = queue.path.parent / "jobs"

    def make_dir(job_id: int) -> Path:
        job_dir = jobs_dir / f"{job_id:04d}"
        try:
            shutil.rmtree(job_dir, ignore_errors=True)  # left by a submit that was rolled back
            job_dir.mkdir(parents=True)
            atomic_write_text(job_dir / "config.toml", spec.cfg.to_toml())
        except OSError as err:
            shutil.rmtree(job_dir, ignore_errors=True)
            raise write_failure(f"cannot create the job folder {job_dir}", err) from None
        return job_dir

    return queue.add(
        make_dir,
        name=spec.name,
        priority=spec.cfg.job.priority,
        gpus=spec.cfg.train.gpus,
        target_kimg=spec.target_kimg,
        data=str(spec.data),
        fingerprint=fingerprint,
        config_sha=spec.config_sha,
    )


__all__ = ["Job", "Queue", "default_root", "open_queue", "submit"]
