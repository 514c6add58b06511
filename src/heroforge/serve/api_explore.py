"""The explorer's API: seeds -> pictures, two seeds -> their child, from a job's model.

The model is the one `heroforge generate --model RUN` uses (the snapshot best.json names: the
best stable FID, or the one picked with "use as best"; else the newest). Drawing goes to the
painter's worker thread (models.py); these routes only wait. Every answer says which precision
drew it (`heroforge serve --precision`): the header x-precision, and "precision" in JSON.
"""

from __future__ import annotations

import base64
import math
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from heroforge.generate.seeds import MAX_SEED, parse_seeds
from heroforge.serve.context import ServeContext
from heroforge.serve.models import MAX_SEEDS, draw_child, draw_seed_grid, draw_seeds

MAX_PSI = 2.0  # beyond this a picture is noise; the official tools use 0.5 to 1


def _check_psi(trunc: float) -> float:
    if not math.isfinite(trunc) or abs(trunc) > MAX_PSI:
        raise HTTPException(400, f"trunc {trunc} is not allowed: -{MAX_PSI:g} to {MAX_PSI:g}")
    return trunc


def _png(data: bytes, precision: str) -> Response:
    headers = {"cache-control": "no-store", "x-precision": precision}
    return Response(data, media_type="image/png", headers=headers)


def explore_router(ctx: ServeContext) -> APIRouter:
    router = APIRouter(prefix="/api/jobs")

    async def run_of(job_id: str) -> Path:
        return await run_in_threadpool(lambda: ctx.run_dir(ctx.job(job_id)))

    def seeds_pictures(run: Path, seeds: list[int], trunc: float, as_json: bool) -> Any:
        model = ctx.models.get(run)
        if as_json:
            return model.precision, draw_seeds(model, seeds, trunc)
        return model.precision, draw_seed_grid(model, seeds, trunc)

    @router.get("/{job_id}/generate", response_model=None)
    async def generate(
        job_id: str,
        seeds: str = Query("0-7", max_length=200),
        trunc: float = 1.0,
        fmt: str = Query("png", alias="format", pattern="^(png|json)$"),
    ) -> Response | dict[str, Any]:
        """format=png: one PNG (the seeds tiled); format=json: {"seeds", "images": base64 PNGs,
        "precision"}."""
        run = await run_of(job_id)
        wanted = parse_seeds(seeds, MAX_SEEDS)
        as_json = fmt == "json"
        precision, result = await ctx.painter.run(
            seeds_pictures, run, wanted, _check_psi(trunc), as_json
        )
        if not as_json:
            return _png(result, precision)
        images = [base64.b64encode(png).decode("ascii") for png in result]
        return {"seeds": wanted, "images": images, "precision": precision}

    def child_picture(run: Path, a: int, b: int, weight: float, trunc: float) -> tuple[str, bytes]:
        model = ctx.models.get(run)
        return model.precision, draw_child(model, a, b, weight, trunc)

    @router.get("/{job_id}/child")
    async def child(
        job_id: str,
        a: int = Query(ge=0, le=MAX_SEED),
        b: int = Query(ge=0, le=MAX_SEED),
        weight: float = Query(0.5, ge=0.0, le=1.0),
        trunc: float = 1.0,
    ) -> Response:
        """The child of seeds a and b; weight is b's share (0 = a, 1 = b)."""
        run = await run_of(job_id)
        precision, png = await ctx.painter.run(child_picture, run, a, b, weight, _check_psi(trunc))
        return _png(png, precision)

    return router
