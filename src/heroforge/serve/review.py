"""Dataset review: a prepared folder's manifest for the thumbnail grid, and the overrides file.

A click on the page writes one line of overrides.csv through heroforge.data.overrides, the
same code `prepare` reads it with; the manifest changes only when `prepare` runs again, so
each row carries both the override the manifest was made with ("override") and the one now in
the file ("pending").
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from heroforge.data.overrides import ACTIONS, read_overrides, set_override
from heroforge.errors import UserError, write_failure

MANIFEST = "manifest.jsonl"
OVERRIDES = "overrides.csv"
ROW_KEYS = (
    "source",
    "decision",
    "reason",
    "detail",
    "body",
    "override",
    "sha256",
    "output",
    "scores",
    "duplicate_of",
    "duplicate_distance",
    "method",
    "size",
    "upscale",
)


def check_prepared(folder: Path) -> Path:
    """The folder, resolved, if `prepare` wrote it (it holds manifest.jsonl)."""
    path = Path(folder).expanduser().resolve()
    if not (path / MANIFEST).is_file():
        raise UserError(f"--prepared {folder}: no {MANIFEST} there (run heroforge prepare first)")
    return path


def read_manifest(folder: Path) -> list[dict[str, Any]]:
    try:
        text = (folder / MANIFEST).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"cannot read {folder / MANIFEST}: {err}") from None
    rows = []
    for line in text.splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue  # prepare writes the manifest atomically; this is someone's edit
        if isinstance(row, dict) and isinstance(row.get("source"), str):
            rows.append(row)
    return rows


class ReviewSets:
    """The prepared folders given with --prepared, by index."""

    def __init__(self, folders: list[Path]) -> None:
        self.folders = [check_prepared(f) for f in folders]
        self._lock = threading.Lock()  # one read-modify-write of overrides.csv at a time

    def folder(self, index: int) -> Path:
        if not 0 <= index < len(self.folders):
            raise LookupError(index)
        return self.folders[index]

    def describe(self) -> list[dict[str, Any]]:
        return [{"index": i, "name": f.name, "path": str(f)} for i, f in enumerate(self.folders)]

    def rows(self, index: int) -> list[dict[str, Any]]:
        folder = self.folder(index)
        pending = read_overrides(folder / OVERRIDES)
        rows = []
        manifest = read_manifest(folder)
        sha_of = {row["source"]: row.get("sha256") for row in manifest}
        for row in manifest:
            shown = {k: row.get(k) for k in ROW_KEYS}
            shown["framed"] = bool(row.get("hash"))  # a framed picture exists to show
            # the picture a duplicate duplicates, to show beside it
            shown["duplicate_sha256"] = sha_of.get(row.get("duplicate_of") or "")
            shown["pending"] = pending.get(row["source"])
            rows.append(shown)
        return rows

    def set_override(self, index: int, source: str, action: str | None) -> str | None:
        """Write (None: remove) one picture's override; only pictures of the manifest."""
        folder = self.folder(index)
        if action is not None and action not in ACTIONS:
            raise UserError(f"action {action!r} is not one of {', '.join(ACTIONS)} or null")
        with self._lock:
            if source not in {row["source"] for row in read_manifest(folder)}:
                raise LookupError(source)
            try:
                set_override(folder / OVERRIDES, source, action)
            except OSError as err:  # a full disk or a read-only folder: the old file stays
                raise write_failure(f"cannot write {folder / OVERRIDES}", err) from None
            return read_overrides(folder / OVERRIDES).get(source)
