"""The four pages. They are static files; the only thing filled in is the token, which the
links to the page's own script and style must carry (a <script src> cannot send a header).
Each page names an empty icon (data:), or the browser would ask for /favicon.ico without the
token and log the 401 answer as an error."""

from __future__ import annotations

import html
from pathlib import Path
from urllib.parse import quote

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from heroforge.serve.context import ServeContext

STATIC = Path(__file__).with_name("static")
PAGES = ("index.html", "job.html", "explore.html", "review.html")


def pages_router(ctx: ServeContext) -> APIRouter:
    router = APIRouter()
    query = "" if ctx.token is None else "?token=" + quote(ctx.token, safe="")
    texts = {
        name: (STATIC / name).read_text(encoding="utf-8").replace("{{q}}", html.escape(query))
        for name in PAGES
    }

    def page(name: str) -> HTMLResponse:
        return HTMLResponse(texts[name], headers={"cache-control": "no-store"})

    @router.get("/")
    def queue_page() -> HTMLResponse:
        return page("index.html")

    @router.get("/job/{job_id}")
    def job_page(job_id: str) -> HTMLResponse:
        ctx.job(job_id)  # 404 for a job that does not exist
        return page("job.html")

    @router.get("/explore/{job_id}")
    def explore_page(job_id: str) -> HTMLResponse:
        ctx.job(job_id)
        return page("explore.html")

    @router.get("/review")
    def review_page() -> HTMLResponse:
        return page("review.html")

    @router.get("/favicon.ico")
    def favicon() -> Response:
        return Response(status_code=204)  # no icon; saves a 404 in every browser console

    return router
