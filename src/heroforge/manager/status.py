"""What `heroforge status` and `queue list` show: one dict per job, a table, progress bars."""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress_bar import ProgressBar
from rich.table import Table

from heroforge import rundir
from heroforge.manager.queue import FINAL_STATES, Job, JobState


def strict_json(value: Any) -> str:
    """JSON that every parser reads: a number that is not finite (an infinite target kimg
    queued by an older heroforge, a NaN loss) is written as null, never as Infinity or NaN."""
    return json.dumps(_finite(value), indent=1, allow_nan=False)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(v) for key, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def summary(job: Job) -> dict[str, Any]:
    """A job as plain data: queue fields, the supervisor's last progress reading, and how the
    run's last training session ended (read from the run folder: it may be newer than the
    supervisor's reading, e.g. written by a trainer that outlived its supervisor). Numbers that
    are not finite are None, so that it is valid JSON (the web API's too)."""
    status = job.status_dict()
    updated = status.pop("updated", None)
    ending = last_ending(job)
    return _finite(
        {
            "id": job.id,
            "name": job.name,
            "state": job.state.value,
            "priority": job.priority,
            "gpus": job.gpus,
            "kimg": job.kimg,
            "target_kimg": job.target_kimg,
            "restarts": job.restarts,
            "failures": job.failures,
            "reason": job.reason,
            "request": job.request,
            "data": job.data,
            "job_dir": job.job_dir,
            "supervisor": job.lease_owner,
            "status_age_s": round(time.time() - updated, 1) if updated else None,
            **{k: v for k, v in status.items() if k not in ("kimg", "target_kimg")},
            "ending": asdict(ending) if ending else None,
            "next_look_s": next_look(job),
        }
    )


def next_look(job: Job) -> float | None:
    """Seconds until a waiting job may start again (None: it is not waiting)."""
    if job.state != JobState.WAITING or job.not_before is None:
        return None
    return round(max(0.0, job.not_before - time.time()), 1)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    if seconds >= 86400:
        return f"{seconds // 86400}d{seconds % 86400 // 3600:02d}h"
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s"


def jobs_table(jobs: list[Job]) -> Table:
    table = Table(show_edge=False, pad_edge=False)
    for title in ("id", "name", "state", "prio", "gpus", "kimg", "restarts", "note"):
        table.add_column(title, justify="right" if title in ("id", "prio", "gpus") else "left")
    for job in jobs:
        note = job.reason or ""
        if job.request and job.state == JobState.RUNNING:  # carried out by its supervisor soon
            note = f"{job.request} requested"
        if (look := next_look(job)) is not None:
            note += f" (next look in {_duration(look)})"
        table.add_row(
            str(job.id),
            job.name,
            job.state.value,
            str(job.priority),
            str(job.gpus),
            f"{job.kimg:g} / {job.target_kimg:g}",
            str(job.restarts),
            note,
        )
    return table


def render_status(console: Console, jobs: list[Job]) -> None:
    if not jobs:
        console.print("the queue is empty (heroforge queue submit --help)")
        return
    console.print(jobs_table(jobs))
    for job in jobs:
        if job.reason and job.state in (JobState.FAILED, JobState.WAITING):
            # whole, since the table's note column may cut it short
            console.print(f"job {job.id}: {job.state}: {job.reason}", markup=False, highlight=False)
        if job.state not in (JobState.RUNNING, *FINAL_STATES):
            _print_ending(console, job)
        if job.state != JobState.RUNNING:
            continue
        s = summary(job)
        fraction = min(1.0, job.kimg / job.target_kimg) if job.target_kimg else 0.0
        console.print()
        console.print(f"job {job.id} {job.name}: {fraction:.1%}", markup=False, highlight=False)
        console.print(ProgressBar(total=1.0, completed=fraction, width=50))
        spk = s.get("sec_per_kimg")
        fid = s.get("fid")
        lines = [
            f"kimg {job.kimg:.3f} / {job.target_kimg:g}   s/kimg {spk if spk else '-'}   "
            f"ETA {_duration(s.get('eta_s'))}   CPU threads {s.get('threads') or '-'}",
            f"restarts {job.restarts}   time not training (start-up, interruptions, redone "
            f"work) {_duration(s.get('lost_s'))}"
            f"   last checkpoint {_duration(s.get('checkpoint_age_s'))} ago "
            f"({s.get('checkpoint_kimg', 0):.3f} kimg)",
            f"augment p {s.get('augment_p') if s.get('augment_p') is not None else '-'}   "
            "latest FID "
            + (f"{fid:.2f} at {s.get('fid_kimg')} kimg" if fid is not None else "-")
            + (f"   verdict {s['verdict']}" if s.get("verdict") else ""),
            f"run folder {s.get('run_dir', '-')}   supervisor {job.lease_owner}",
        ]
        if job.lease_expires is not None and job.lease_expires < time.time():
            lines.append(
                f"supervisor silent for {_duration(s.get('status_age_s'))}: the next "
                "`heroforge manager run` takes the job over"
            )
        for line in lines:
            console.print(f"  {line}", markup=False, highlight=False)


def last_ending(job: Job) -> rundir.Ending | None:
    """How the job's run last ended, from its run folder (None before its run folder exists)."""
    run_dir = job.status_dict().get("run_dir")
    return rundir.read_ending(Path(run_dir)) if run_dir else None


def _print_ending(console: Console, job: Job) -> None:
    """For a job waiting to go on: whether its last session stopped cleanly (nothing lost) or
    not (it goes on from its newest good checkpoint)."""
    ending = last_ending(job)
    if ending is None:
        return
    goes_on = "from there" if ending.resumable else "from its newest good checkpoint"
    line = f"job {job.id}: last session {ending.describe()}; it goes on {goes_on}"
    console.print(line, markup=False, highlight=False)
