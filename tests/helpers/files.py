"""Reading the files heroforge writes, and copying synthetic pictures for a test's input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path


def read_jsonl(path: Path) -> list[dict]:
    """Every record of a JSON-lines file (manifest.jsonl, stats.jsonl)."""
    return [json.loads(line) for line in path.read_text().splitlines()]


def copy_synth_pictures(synth_set: tuple[Path, list[dict]], dest: Path, count: int) -> Path:
    """The first count raw pictures of the session's synthetic set, copied into dest."""
    folder, labels = synth_set
    dest.mkdir(parents=True, exist_ok=True)
    for label in labels[:count]:
        shutil.copy(folder / "raw" / label["file"], dest / label["file"])
    return dest


def read_manifest(prepared: Path) -> list[dict]:
    """The rows of a prepared folder's manifest.jsonl, one a picture."""
    return read_jsonl(prepared / "manifest.jsonl")
