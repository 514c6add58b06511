"""Run folders that no queue started (`heroforge serve --runs DIR`): runs of `heroforge train`
and of the SLURM script, read-only and without torch.

Each DIR given is a run folder (it holds run.json) or a folder holding run folders, one level
down (`heroforge train --outdir DIR` makes DIR/NNNNN-name). They are looked for again on every
listing: a run started after the server shows up on the next refresh. A URL names a run by the
DIR's position on the command line and the run folder's name, both matched against strict
patterns, and the folder must resolve inside that DIR (a symlink out is not ours to show).

Every file may be mid-write or damaged: a row then says why in its "reason", it never fails the
listing.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from fastapi import HTTPException

from heroforge import rundir
from heroforge.errors import UserError
from heroforge.manager.progress import latest_checkpoint
from heroforge.serve.runs import list_grids
from heroforge.serve.security import checked_name, inside
from heroforge.serve.stats import StatsCache

RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")  # what `train` names run folders
FOLDER_INDEX = re.compile(r"[0-9]{1,4}")
# No ending recorded: the run trains if stats.jsonl changed within this long, or within three
# of its ticks when a tick takes longer (a big model on a slow GPU).
FRESH_S = 600.0


@dataclass(frozen=True)
class RunsFolder:
    base: Path  # resolved: every run folder shown from it lies inside
    only: str | None  # the folder given was itself a run folder: this one, in base


class RunFolders:
    """The folders given with --runs, and the run folders in them."""

    def __init__(self, folders: Sequence[Path]) -> None:
        self.folders: list[RunsFolder] = []
        for folder in folders:
            if not folder.is_dir():
                raise UserError(f"--runs {folder}: there is no such folder")
            resolved = folder.resolve()
            if (resolved / rundir.RUN_JSON).is_file():
                if not RUN_NAME.fullmatch(resolved.name):  # a URL could not name it
                    raise UserError(
                        f"--runs {folder}: a run folder's name must be letters, digits, . _ - "
                        "(as `heroforge train` names them)"
                    )
                self.folders.append(RunsFolder(resolved.parent, resolved.name))
            else:
                self.folders.append(RunsFolder(resolved, None))

    def runs(self, skip: Iterable[Path] = ()) -> list[tuple[str, Path]]:
        """(id "INDEX/NAME", resolved run folder) for every run folder, each once, but those
        in skip (resolved: the queue's)."""
        seen = set(skip)
        found = []
        for index, folder in enumerate(self.folders):
            names = [folder.only] if folder.only else _child_names(folder.base)
            for name in names:
                path = folder.base / name
                resolved = path.resolve()
                if (
                    RUN_NAME.fullmatch(name)
                    and resolved.is_relative_to(folder.base)
                    and (resolved / rundir.RUN_JSON).is_file()
                    and resolved not in seen
                ):
                    seen.add(resolved)
                    found.append((f"{index}/{name}", resolved))
        return found

    def find(self, index: str, name: str) -> Path:
        """The run folder a URL names, resolved; 404 for anything else."""
        checked_name(FOLDER_INDEX, index, "runs folder")
        checked_name(RUN_NAME, name, "run")
        if int(index) >= len(self.folders):
            raise HTTPException(404, "no such runs folder")
        folder = self.folders[int(index)]
        if folder.only not in (None, name):
            raise HTTPException(404, "no such run")
        path = inside(folder.base, name)
        if not (path / rundir.RUN_JSON).is_file():
            raise HTTPException(404, "no such run")
        return path


def _child_names(base: Path) -> list[str]:
    try:
        return sorted(p.name for p in base.iterdir())
    except OSError:  # the folder went away, or we may not read it: nothing to show
        return []


def run_row(run_id: str, run_dir: Path, stats: StatsCache) -> dict[str, Any]:
    """One row of the run list: what run.json, stats.jsonl, the checkpoints, ending.json and
    the sample grids say (None where they do not say it; "reason" names what was damaged)."""
    reasons = []
    try:
        run = rundir.read_run_json(run_dir)
        if not isinstance(run, dict):
            raise ValueError("it is not a JSON object")
    except (OSError, UnicodeDecodeError, ValueError) as err:
        run = {}
        reasons.append(f"run.json cannot be read: {err}")
    newest = stats.newest(run_dir / rundir.STATS)
    nimg, _age = latest_checkpoint(run_dir / rundir.CHECKPOINTS)
    # a stop checkpoints past the last tick: the progress is whichever lies further
    kimgs = [k for k in (newest["kimg"], None if nimg is None else nimg / 1000) if k is not None]
    ending = rundir.read_ending(run_dir)
    quiet_s = _quiet_seconds(run_dir)
    if ending is not None:
        state = ending.how
    elif quiet_s is not None and quiet_s < _fresh_window(newest):
        state = "running"
    else:
        state = "silent"  # no ending and no news: killed without a word (-9, a lost node)
    if damaged := newest["damaged_lines"]:
        reasons.append(
            f"stats.jsonl: {len(damaged)} damaged line(s), the first is line {damaged[0]}"
        )
    if newest["torn_tail"] and state != "running":
        reasons.append("stats.jsonl ends in a half-written line")
    grids = list_grids(run_dir)
    return {
        "id": run_id,
        "name": run_dir.name,
        "path": str(run_dir),
        "data": _typed(run.get("data"), str),
        "precision": _typed(run.get("precision"), str),
        "target_kimg": _finite(run.get("total_kimg")),
        "kimg": max(kimgs) if kimgs else None,
        "sec_per_kimg": newest["sec_per_kimg"],
        "state": state,
        "ending": asdict(ending) if ending else None,
        "quiet_s": None if quiet_s is None else round(quiet_s, 1),
        "grid": grids[-1]["name"] if grids else None,
        "best_fid": newest["best_fid"],
        "best_fid_kimg": newest["best_fid_kimg"],
        "reason": "; ".join(reasons) or None,
    }


def _quiet_seconds(run_dir: Path) -> float | None:
    """Seconds since the trainer last wrote: a tick, or run.json (a session starting)."""
    stamps = []
    for path in (run_dir / rundir.STATS, run_dir / rundir.RUN_JSON):
        try:
            stamps.append(path.stat().st_mtime)
        except OSError:
            continue
    return max(0.0, time.time() - max(stamps)) if stamps else None


def _fresh_window(newest: dict[str, Any]) -> float:
    spk, tick = newest["sec_per_kimg"], newest["tick_kimg"]
    return max(FRESH_S, 3 * spk * tick) if spk is not None and tick is not None else FRESH_S


def _typed(value: Any, kind: type) -> Any:
    return value if isinstance(value, kind) else None


def _finite(value: Any) -> float | None:
    # JSON cannot carry an infinite target kimg (older runs wrote one): shown as unknown
    number = isinstance(value, int | float) and not isinstance(value, bool)
    return value if number and math.isfinite(value) else None
