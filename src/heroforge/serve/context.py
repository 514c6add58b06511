"""What every route needs: the queue, the caches, and the checked way from a URL to a job."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fastapi import HTTPException

from heroforge.errors import UserError
from heroforge.manager.queue import Job, Queue
from heroforge.serve.models import ModelCache, Painter
from heroforge.serve.review import ReviewSets
from heroforge.serve.run_folders import RunFolders
from heroforge.serve.runs import job_run_dir
from heroforge.serve.security import JOB_ID, checked_name
from heroforge.serve.stats import StatsCache


@dataclass
class ServeContext:
    root: Path  # the manager root, resolved
    queue: Queue
    token: str | None
    stats: StatsCache
    models: ModelCache
    painter: Painter
    review: ReviewSets
    runs: RunFolders  # --runs: run folders that no queue started

    def job(self, job_id: str) -> Job:
        """The job a URL names; 404 for anything but the number of an existing job."""
        checked_name(JOB_ID, job_id, "job")
        try:
            return self.queue.get(int(job_id))
        except UserError:
            raise HTTPException(404, f"there is no job {job_id}") from None

    def run_dir(self, job: Job) -> Path:
        run = job_run_dir(self.root, job)
        if run is None:
            raise HTTPException(404, f"job {job.id} has no run folder yet")
        return run
