"""The queue page's and the job page's API: jobs, their stats and grids, and the actions.

The routes are plain functions: FastAPI runs them in its thread pool, so a queue file busy
with a supervisor's write delays only the request that reads it.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, Field

from heroforge import rundir
from heroforge.config_sections import MAX_PRIORITY
from heroforge.errors import UserError, write_failure
from heroforge.manager.queue import Job
from heroforge.manager.status import summary
from heroforge.serve.context import ServeContext
from heroforge.serve.runs import list_grids, snapshots
from heroforge.serve.security import GRID_NAME, checked_name, inside


class PriorityBody(BaseModel):
    priority: int = Field(ge=-MAX_PRIORITY, le=MAX_PRIORITY)  # the bound the CLI checks too


class BestBody(BaseModel):
    name: str = Field(max_length=64)  # a checkpoint's file name, ckpt-NNNNNNNNNNNN.safetensors


def jobs_router(ctx: ServeContext) -> APIRouter:
    router = APIRouter(prefix="/api/jobs")

    @router.get("")
    def list_jobs() -> list[dict[str, Any]]:
        return [summary(job) for job in ctx.queue.jobs()]

    @router.get("/{job_id}")
    def show_job(job_id: str) -> dict[str, Any]:
        job = ctx.job(job_id)
        run = None
        try:
            folder = ctx.run_dir(job)
            run = {"name": folder.name, "grids": len(list_grids(folder)), **snapshots(folder)}
        except HTTPException:
            pass  # not started yet: the page shows the queue fields alone
        return {**summary(job), "events": ctx.queue.events(job.id), "run": run}

    @router.get("/{job_id}/stats")
    def job_stats(job_id: str, max_points: int = Query(0, ge=0, le=1_000_000)) -> Response:
        """Ticks (at most max_points of them, evenly spaced; 0 = all), metrics, verdicts."""
        folder = ctx.run_dir(ctx.job(job_id))
        # JSON bytes from the cache: FastAPI's encoder would walk thousands of ticks each time
        body = ctx.stats.plot_json(folder / rundir.STATS, max_points, run=folder.name)
        return Response(body, media_type="application/json")

    @router.get("/{job_id}/grids")
    def job_grids(job_id: str) -> list[dict[str, Any]]:
        return list_grids(ctx.run_dir(ctx.job(job_id)))

    @router.get("/{job_id}/grids/{name}")
    def grid_file(job_id: str, name: str) -> FileResponse:
        checked_name(GRID_NAME, name, "grid")
        path = inside(ctx.run_dir(ctx.job(job_id)) / rundir.SAMPLES, name)
        # a grid is rewritten when a run resumes from before it: cache briefly only
        return FileResponse(path, media_type="image/png", headers={"cache-control": "max-age=60"})

    def act(job_id: str, action: str, **kwargs: Any) -> dict[str, Any]:
        job = ctx.job(job_id)
        try:
            changed: Job = getattr(ctx.queue, action)(job.id, **kwargs)
        except UserError as err:  # e.g. cancelling a finished job; a failed queue is a 503
            raise HTTPException(409, str(err)) from None
        return summary(changed)

    @router.post("/{job_id}/cancel")
    def cancel(job_id: str) -> dict[str, Any]:
        return act(job_id, "cancel")

    @router.post("/{job_id}/pause")
    def pause(job_id: str) -> dict[str, Any]:
        return act(job_id, "pause")

    @router.post("/{job_id}/resume")
    def resume(job_id: str) -> dict[str, Any]:
        return act(job_id, "resume")

    @router.post("/{job_id}/priority")
    def priority(job_id: str, body: PriorityBody) -> dict[str, Any]:
        return act(job_id, "set_priority", priority=body.priority)

    @router.post("/{job_id}/best")
    def use_as_best(job_id: str, body: BestBody) -> dict[str, Any]:
        """Make a snapshot the run's best: best.json names it, as training does for the best
        stable FID, so `heroforge generate --model RUN` (and the explorer) draw with it. A
        running job may still move best.json to a later stable snapshot with a better FID."""
        folder = ctx.run_dir(ctx.job(job_id))  # resolved
        checked_name(rundir.CHECKPOINT_NAME, body.name, "snapshot")
        # the checkpoint file itself, not a symlink: best.json must name a file of this run
        path = inside(folder, rundir.CHECKPOINTS, body.name)
        if path != folder / rundir.CHECKPOINTS / body.name:
            raise HTTPException(404, "no such snapshot")
        try:
            rundir.mark_best(path.parent, body.name)
        except UserError:  # its sidecar is missing or damaged: generate could not load it
            raise HTTPException(404, f"no usable snapshot {body.name}") from None
        except OSError as err:  # best.json could not be written (a full disk): the old one stays
            raise write_failure(f"cannot write {path.parent / rundir.BEST}", err) from None
        return snapshots(folder)

    return router
