"""`heroforge status`: the queue at a glance, with the progress of running jobs."""

from __future__ import annotations

from typing import Annotated

import typer

from heroforge.commands.base import add_command
from heroforge.commands.manager import Root, listed_jobs
from heroforge.console import console


def status_command(
    root: Root = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON for scripts.")] = False,
) -> None:
    """The queue, and for each running job its progress, speed, ETA and interruptions."""
    from heroforge.manager.status import render_status, strict_json, summary

    jobs = listed_jobs(root, True, as_json)
    if jobs is None:
        return
    if as_json:
        print(strict_json([summary(j) for j in jobs]))
    else:
        render_status(console, jobs)


def register(app: typer.Typer) -> None:
    add_command(app, status_command, "status")
