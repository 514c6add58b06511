"""A job's run folder, read for the pages: which folder it is, its sample grids, its snapshots
(its stats are read by stats.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from heroforge.manager.progress import CHECKPOINT, find_run_dir
from heroforge.manager.queue import Job
from heroforge.serve.security import GRID_NAME

GRID_KIMG = re.compile(r"grid-([0-9]+(?:\.[0-9]{3})?)kimg\.png")  # older runs: whole kimg


def job_run_dir(root: Path, job: Job) -> Path | None:
    """The job's run folder, resolved; None if it has none yet, or if the queue row or a
    symlink points outside the manager root's jobs/ folder (then it is not ours to show)."""
    jobs = (root / "jobs").resolve()
    job_dir = Path(job.job_dir).resolve()
    if not job_dir.is_relative_to(jobs):
        return None
    run = find_run_dir(job_dir / "runs")
    if run is None:
        return None
    run = run.resolve()
    return run if run.is_relative_to(job_dir) else None


def list_grids(run_dir: Path) -> list[dict[str, Any]]:
    """The fixed-seed sample grids, oldest first: [{"name", "kimg"}]."""
    folder = run_dir / "samples"
    if not folder.is_dir():
        return []
    top = folder.resolve()
    grids = []
    for path in folder.iterdir():
        match = GRID_KIMG.fullmatch(path.name)
        if not (match and GRID_NAME.fullmatch(path.name) and path.is_file()):
            continue
        if path.resolve().is_relative_to(top):  # a symlink out is not ours to show
            grids.append({"name": path.name, "kimg": float(match.group(1))})
    return sorted(grids, key=lambda g: g["kimg"])


def _marker(folder: Path, name: str) -> str | None:
    try:
        value = json.loads((folder / name).read_text(encoding="utf-8"))["file"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return value if isinstance(value, str) else None


def snapshots(run_dir: Path) -> dict[str, Any]:
    """The checkpoints on disk and which of them latest.json and best.json name."""
    folder = run_dir / "checkpoints"
    names = sorted(p.name for p in folder.glob("ckpt-*.safetensors")) if folder.is_dir() else []
    found = [
        {"name": name, "kimg": int(m.group(1)) / 1000}
        for name in names
        if (m := CHECKPOINT.fullmatch(name))
    ]
    return {
        "checkpoints": found,
        "latest": _marker(folder, "latest.json"),
        "best": _marker(folder, "best.json"),
    }
