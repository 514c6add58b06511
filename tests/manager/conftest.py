"""Helpers for supervisor tests: real `heroforge manager run` processes on a tiny CPU job."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from heroforge.manager import open_queue, submit
from heroforge.manager.queue import Queue
from heroforge.manager.spec import spec_from_options

# ticks and checkpoints every 4 steps of 8 images; the supervisor looks 5 times a second
FAST_JOB = [
    "train.tick_kimg=0.032",
    "train.checkpoint_kimg=0.032",
    "train.keep_checkpoints=20",
    "job.poll_seconds=0.2",
    "job.retry_backoff_seconds=0.2",
]


class Manager:
    """A manager root with its queue, and supervisors started as real processes."""

    def __init__(self, root: Path, archive: Path) -> None:
        self.root, self.archive = root, archive
        self.queue: Queue = open_queue(root)
        self.supervisors: list[subprocess.Popen] = []

    def submit(
        self, kimg: float, *overrides: str, allow_duplicate: bool = True, data: Path | None = None
    ) -> int:
        spec = spec_from_options(data or self.archive, "tiny-cpu", kimg, [*FAST_JOB, *overrides])
        return submit(self.queue, spec, allow_duplicate).id

    def supervisor(self, *args: str) -> subprocess.Popen:
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
        log = open(self.root / f"supervisor-{len(self.supervisors)}.log", "wb")  # noqa: SIM115
        sup = subprocess.Popen(
            [sys.executable, "-m", "heroforge", "manager", "run", "--root", str(self.root),
             "--exit-when-idle", "--lease-seconds", "2", "--stop-timeout", "60", *args],
            stdout=log, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
        self.supervisors.append(sup)
        return sup

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 300) -> None:
        deadline = time.time() + timeout
        while not predicate():
            if time.time() > deadline:
                raise AssertionError(f"timed out; supervisor logs:\n{self.logs()}")
            time.sleep(0.05)

    def logs(self) -> str:
        parts = [p.read_text(errors="replace") for p in sorted(self.root.glob("supervisor-*.log"))]
        parts += [p.read_text(errors="replace") for p in sorted(self.root.glob("jobs/*/train.log"))]
        return "\n".join(parts)

    def stop_all(self) -> None:
        for sup in self.supervisors:
            if sup.poll() is None:
                sup.send_signal(signal.SIGKILL)
                sup.wait()


@pytest.fixture
def manager(tmp_path, tiny_archive):
    m = Manager(tmp_path / "root", tiny_archive)
    yield m
    m.stop_all()
