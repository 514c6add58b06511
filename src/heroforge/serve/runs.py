"""A job's run folder, read for the pages: which folder it is, its sample grids, its snapshots
(its stats are read by stats.py)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from heroforge import rundir
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
    run = rundir.find_run_dir(job_dir / "runs")
    if run is None:
        return None
    run = run.resolve()
    return run if run.is_relative_to(job_dir) else None


def list_grids(run_dir: Path) -> list[dict[str, Any]]:
    """The fixed-seed sample grids, oldest first: [{"name", "kimg"}]."""
    folder = run_dir / rundir.SAMPLES
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


def snapshots(run_dir: Path) -> dict[str, Any]:
    """The checkpoints on disk and which of them latest.json and best.json name."""
    folder = run_dir / rundir.CHECKPOINTS
    found = [
        {"name": path.name, "kimg": nimg / 1000}
        for path in reversed(rundir.list_checkpoints(folder))  # oldest first
        if (nimg := rundir.checkpoint_nimg(path.name)) is not None
    ]
    return {
        "checkpoints": found,
        "latest": rundir.read_marker(folder, rundir.LATEST),
        "best": rundir.read_marker(folder, rundir.BEST),
    }
