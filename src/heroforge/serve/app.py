"""create_app: the web page's FastAPI app over a manager root (and prepared folders to review).

    GET  /api/jobs                      every job's summary (as `heroforge status --json`)
    GET  /api/jobs/{id}                 one job: summary, queue events, run folder snapshots
    GET  /api/jobs/{id}/stats           ticks, metrics and verdicts to plot (?max_points=N)
    GET  /api/jobs/{id}/grids[/{name}]  the fixed-seed sample grids, and one as PNG
    POST /api/jobs/{id}/cancel|pause|resume, /api/jobs/{id}/priority {"priority": N}
    POST /api/jobs/{id}/best {"name": "ckpt-....safetensors"}          "use as best"
    GET  /api/jobs/{id}/generate?seeds=1,2,3&trunc=0.7[&format=json]   PNG (or base64 PNGs)
    GET  /api/jobs/{id}/child?a=12&b=40&weight=0.5                     PNG
    GET  /api/runs                      run folders no queue started (--runs), one row each
    GET  /api/runs/{i}/{name}[/stats|/grids[/{grid}]]   one of them, as a job's
    GET  /api/review[?set=N], /api/review/thumb/{sha}.jpg|png, POST /api/review/override
    GET  /, /job/{id}, /explore/{id}, /review                          the pages

Errors come back as {"detail": "one line"}: 400 for a wrong value, 401 without the token,
404 for anything a URL names that does not exist or is not ours to show, 409 for an action
the job's state does not allow, 503 when the machine fails (the queue locked or damaged, a full
disk).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from heroforge.errors import OperationalError, UserError
from heroforge.manager import open_queue
from heroforge.serve.api_explore import explore_router
from heroforge.serve.api_jobs import jobs_router
from heroforge.serve.api_review import review_router
from heroforge.serve.api_runs import runs_router
from heroforge.serve.context import ServeContext
from heroforge.serve.models import ModelCache, Painter
from heroforge.serve.pages import STATIC, pages_router
from heroforge.serve.review import ReviewSets
from heroforge.serve.run_folders import RunFolders
from heroforge.serve.security import AccessMiddleware, check_token
from heroforge.serve.stats import StatsCache


def create_app(
    root: Path,
    token: str | None = None,
    prepared_dirs: Sequence[Path] = (),
    models: ModelCache | None = None,
    run_dirs: Sequence[Path] = (),
) -> FastAPI:
    """The app; every request needs `token` when one is given (see security.py).

    root: the manager root (queue and jobs). prepared_dirs: `prepare` output folders that the
    review page may show and write overrides into. models: the generator cache to draw with
    (default: the last 2 models, on the CPU); tests share one between apps. run_dirs: run
    folders, or folders holding them, that no queue started, to list besides the jobs.
    """
    if token is not None:
        check_token(token)
    review = ReviewSets([Path(p) for p in prepared_dirs])  # checked before any file is made
    runs = RunFolders([Path(p) for p in run_dirs])
    queue = open_queue(root)
    models = models or ModelCache()
    ctx = ServeContext(
        root=queue.path.parent,
        queue=queue,
        token=token,
        stats=StatsCache(max_files=64),  # the run list reads every run's stats.jsonl
        models=models,
        painter=Painter(),
        review=review,
        runs=runs,
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        ctx.painter.close()

    # no /docs: its page loads Swagger from a CDN, and the server must work offline
    app = FastAPI(
        title="heroforge", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan
    )
    app.state.ctx = ctx
    app.include_router(jobs_router(ctx))
    app.include_router(explore_router(ctx))
    app.include_router(review_router(ctx))
    app.include_router(runs_router(ctx))
    app.include_router(pages_router(ctx))
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_middleware(AccessMiddleware, token=token)

    @app.exception_handler(UserError)
    async def user_error(_request: Request, err: UserError) -> JSONResponse:
        return JSONResponse({"detail": str(err)}, status_code=400)

    @app.exception_handler(OperationalError)
    async def operational_error(_request: Request, err: OperationalError) -> JSONResponse:
        # the queue is locked or damaged, a disk is full: not the request's fault, try later
        return JSONResponse({"detail": str(err)}, status_code=503)

    return app
