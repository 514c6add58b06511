"""The review page's API: manifest rows, thumbnails, and writing overrides.csv."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from heroforge.data.overrides import ACTIONS
from heroforge.serve.context import ServeContext
from heroforge.serve.security import THUMB_NAME, checked_name, inside

MAX_SOURCE = 4096  # longer than any path prepare accepts


class OverrideBody(BaseModel):
    source: str = Field(min_length=1, max_length=MAX_SOURCE)
    action: str | None  # include, exclude, upper, full; null removes the override
    set: int = Field(0, ge=0)


def review_router(ctx: ServeContext) -> APIRouter:
    router = APIRouter(prefix="/api/review")

    def folder(index: int) -> Path:
        try:
            return ctx.review.folder(index)
        except LookupError:
            raise HTTPException(404, "no such prepared folder (serve --prepared DIR)") from None

    @router.get("")
    def review_rows(set_index: int = Query(0, alias="set", ge=0)) -> dict[str, Any]:
        folder(set_index)
        return {
            "sets": ctx.review.describe(),
            "set": set_index,
            "actions": list(ACTIONS),
            "rows": ctx.review.rows(set_index),
        }

    @router.get("/thumb/{name}")
    def thumb(name: str, set_index: int = Query(0, alias="set", ge=0)) -> FileResponse:
        """NAME.jpg: the source thumbnail with the subject outlined; NAME.png: the framed
        picture. NAME is the picture's sha256, as in the manifest."""
        match = THUMB_NAME.fullmatch(checked_name(THUMB_NAME, name, "thumbnail"))
        kind = "thumbs" if match and match.group(1) == "jpg" else "framed"
        path = inside(folder(set_index) / ".cache" / kind, name)
        media = "image/jpeg" if kind == "thumbs" else "image/png"
        # named by content hash: the same name always holds the same picture
        return FileResponse(path, media_type=media, headers={"cache-control": "max-age=86400"})

    @router.post("/override")
    def override(body: OverrideBody) -> dict[str, Any]:
        folder(body.set)
        try:
            pending = ctx.review.set_override(body.set, body.source, body.action)
        except LookupError:
            raise HTTPException(404, "no such picture in the manifest") from None
        return {"source": body.source, "pending": pending}

    return router
