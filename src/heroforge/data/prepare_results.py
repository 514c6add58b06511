"""What `prepare` produces: one record per picture (the cache and the manifest keep them as
JSON) and the run's summary."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypedDict


class PictureRecord(TypedDict, total=False):
    """One picture's analysis, as process() returns it and the cache keeps it (JSON); finalise
    turns each into a manifest row by adding the decision keys."""

    source: str  # its name in the input (folder-relative path or zip entry)
    sha256: str  # of the file's bytes; names its cache entries (absent: unreadable)
    decision: str  # "analysed", or "error" for a file that is not a readable picture
    reason: str  # why it is an error (a Skip code)
    detail: str  # the one-line explanation of the error
    size: list[int]  # [width, height] of the file's picture
    notes: list[str]  # conversions applied when decoding (e.g. "exif-rotated")
    method: str  # how the subject was cut out
    closeup: bool  # a small subject, analysed in a cut-out of the file (data/closeup.py)
    human_cues: str  # "mediapipe" or "colour"
    scores: dict[str, float]  # Scores.as_dict()
    upscale: float | None  # the enlargement the framed subject needed (None: no subject)
    hash: str  # dhash of the framed picture (absent: no subject to frame)
    thumb: str  # dedup.colour_signature of the framed picture
    context: str  # dedup.context_signature: the same square before background removal
    whole_hash: str  # dhash of the whole picture, background and all


@dataclass(frozen=True)
class PrepareSummary:
    """What one `prepare` run made of its input pictures."""

    inputs: int  # every picture found, readable or not
    kept: int  # pictures in images/, ready for the archive
    excluded: dict[str, int]  # why pictures were left out (reason -> count)
    errors: dict[str, int]  # why files could not be read as pictures (reason -> count)
    human_cues: str  # how not_human was decided: "mediapipe" or "colour"
    unknown_overrides: list[str]  # overrides.csv lines naming no input picture (typos)
