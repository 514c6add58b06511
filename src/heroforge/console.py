"""Console and progress output for the command line, usable by library code as well.

Everything goes to stderr, so that stdout stays for what a command prints for scripts (TOML,
JSON, a version). This module imports nothing of heroforge's own: any module may use it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)

# The type of the `log` callbacks the library takes: one line of text for the user.
Log = Callable[[str], None]

console = Console(stderr=True, soft_wrap=True)  # log files keep whole lines

LOG_EVERY = 30.0  # seconds between progress lines when stderr is not an interactive terminal


class _Progress(Progress):
    """rich's bar on an interactive terminal. In logs and pipes (nohup, SLURM, systemd) a bar
    cannot redraw itself, so there is none; instead a plain line, at most every LOG_EVERY
    seconds, says how far a long step has come, and the log shows the command is alive."""

    def __init__(self, *columns: ProgressColumn, **kwargs: Any) -> None:
        super().__init__(*columns, **kwargs)
        self._logged_at = time.monotonic()

    def update(self, task_id: TaskID, **kwargs: Any) -> None:
        super().update(task_id, **kwargs)
        self._log_now_and_then(task_id)

    def advance(self, task_id: TaskID, advance: float = 1) -> None:
        super().advance(task_id, advance)
        self._log_now_and_then(task_id)

    def _log_now_and_then(self, task_id: TaskID) -> None:
        now = time.monotonic()
        if not self.disable or now - self._logged_at < LOG_EVERY:
            return
        self._logged_at = now
        task = next(t for t in self.tasks if t.id == task_id)
        line = f"{task.description}: {_count(task.completed)}"
        if task.total:
            line += f"/{_count(task.total)} ({math.floor(task.percentage)}%)"
        if task.total and task.completed:
            rest = max(0.0, task.total - task.completed)
            minutes, seconds = divmod(round((task.elapsed or 0.0) * rest / task.completed), 60)
            line += f", about {minutes}:{seconds:02d} left"
        console.print(line, markup=False, highlight=False)


def _count(value: float) -> str:
    """1234567 as it is, not 1.23457e+06."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def progress_bar() -> Progress:
    """A progress display for one long step (use it as a context manager); see _Progress."""
    return _Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        # logs and pipes (also a forced-colour one, or TERM=dumb) get a line now and then
        disable=not console.is_interactive,
    )
