"""Reading the files heroforge writes, and copying synthetic pictures for a test's input."""

from __future__ import annotations

import json
import shutil
import zipfile
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


def archive_without_one_image(archive: Path, out: Path) -> None:
    """Another training archive of the same size and format: one picture fewer (a dataset
    that changed, for its fingerprint)."""
    with zipfile.ZipFile(archive) as src, zipfile.ZipFile(out, "w") as dst:
        names = src.namelist()
        dropped = next(n for n in names if n.endswith(".png"))
        for name in names:
            if name != dropped:
                dst.writestr(name, src.read(name))
