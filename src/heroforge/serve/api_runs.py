"""The run list's API: run folders that no queue started (see run_folders.py), read-only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse, Response

from heroforge import rundir
from heroforge.serve.context import ServeContext
from heroforge.serve.run_folders import run_row
from heroforge.serve.runs import job_run_dir, list_grids, snapshots
from heroforge.serve.security import GRID_NAME, checked_name, inside


def runs_router(ctx: ServeContext) -> APIRouter:
    router = APIRouter(prefix="/api/runs")

    def queued_runs() -> set[Path]:
        """The queue's run folders: the queue page shows them, as jobs."""
        found = (job_run_dir(ctx.root, job) for job in ctx.queue.jobs())
        return {run for run in found if run is not None}

    @router.get("")
    def list_runs() -> list[dict[str, Any]]:
        return [
            run_row(run_id, folder, ctx.stats)
            for run_id, folder in ctx.runs.runs(skip=queued_runs())
        ]

    @router.get("/{index}/{name}")
    def show_run(index: str, name: str) -> dict[str, Any]:
        folder = ctx.runs.find(index, name)
        return {**run_row(f"{index}/{name}", folder, ctx.stats), **snapshots(folder)}

    @router.get("/{index}/{name}/stats")
    def run_stats(
        index: str, name: str, max_points: int = Query(0, ge=0, le=1_000_000)
    ) -> Response:
        folder = ctx.runs.find(index, name)
        body = ctx.stats.plot_json(folder / rundir.STATS, max_points, run=folder.name)
        return Response(body, media_type="application/json")

    @router.get("/{index}/{name}/grids")
    def run_grids(index: str, name: str) -> list[dict[str, Any]]:
        return list_grids(ctx.runs.find(index, name))

    @router.get("/{index}/{name}/grids/{grid}")
    def grid_file(index: str, name: str, grid: str) -> FileResponse:
        checked_name(GRID_NAME, grid, "grid")
        path = inside(ctx.runs.find(index, name) / rundir.SAMPLES, grid)
        return FileResponse(path, media_type="image/png", headers={"cache-control": "max-age=60"})

    return router
