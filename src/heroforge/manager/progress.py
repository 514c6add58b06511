"""Read a training run's progress from the files the trainer writes, without importing torch.

The sources are the run folder's stats.jsonl (one JSON line per tick, plus metric and verdict
events) and checkpoints/latest.json (their names: heroforge.rundir). Both may be mid-write
while we read: a torn last line is ignored, and a missing file means "nothing yet".
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from heroforge import rundir


@dataclass(frozen=True)
class RunProgress:
    kimg: float = 0.0  # at the last tick, or the newest checkpoint where that is further
    checkpoint_kimg: float = 0.0  # at the newest checkpoint (what a resume starts from)
    checkpoint_age_s: float | None = None
    sec_per_kimg: float | None = None
    elapsed_s: float = 0.0  # training time that counts (kept work), over all sessions
    augment_p: float | None = None
    rt: float | None = None
    fid: float | None = None
    fid_kimg: float | None = None
    verdict: str | None = None
    threads: int | None = None  # CPU threads the trainer ran with, at the last tick
    ticks: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_progress(run_dir: Path | None) -> RunProgress:
    if run_dir is None:
        return RunProgress()
    values: dict[str, Any] = {}
    ticks = 0
    for record in _records(run_dir / rundir.STATS):
        event = record.get("event")
        if event == "metrics" and "fid" in record:
            values.update(fid=record["fid"], fid_kimg=record.get("kimg"))
        elif event == "verdict":
            values["verdict"] = record.get("verdict")
        elif event is None and "kimg" in record:
            ticks += 1
            values.update(
                kimg=record["kimg"],
                sec_per_kimg=record.get("sec_per_kimg"),
                elapsed_s=record.get("elapsed_s", 0.0),
                augment_p=record.get("augment_p"),
                rt=record.get("rt"),
                threads=record.get("threads"),
            )
    nimg, age = latest_checkpoint(run_dir / rundir.CHECKPOINTS)
    if nimg is not None:
        values.update(checkpoint_kimg=nimg / 1000, checkpoint_age_s=age)
        # a stop checkpoints past the last tick: the progress is whichever lies further
        values["kimg"] = max(values.get("kimg", 0.0), nimg / 1000)
    return RunProgress(ticks=ticks, **values)


def latest_checkpoint(folder: Path) -> tuple[int | None, float | None]:
    """(images at the newest checkpoint, its age in seconds), from latest.json or the files."""
    name = rundir.read_marker(folder, rundir.LATEST)
    if name is None:
        newest = rundir.list_checkpoints(folder)[:1]
        name = newest[0].name if newest else None
    nimg = None if name is None else rundir.checkpoint_nimg(name)
    if name is None or nimg is None:
        return None, None
    try:
        age = time.time() - (folder / name).stat().st_mtime
    except OSError:
        age = None
    return nimg, age


def _records(path: Path) -> list[dict[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return []
    records = []
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue  # the line being written right now
        if isinstance(record, dict):
            records.append(record)
    return records
