"""Real disks that fail: a small tmpfs that fills up, a folder nobody may write (chattr +i).

Both need root (as in the project's sandbox and CI containers); elsewhere the tests that use
them are skipped with the reason.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def small_disk(where: Path, megabytes: int) -> Iterator[Path]:
    """A tmpfs of `megabytes` mounted at `where` (made here) for the block's length."""
    where.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={megabytes}m", "tmpfs", str(where)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip() or 'not root'}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "--lazy", str(where)], check=True)


def fill(disk: Path) -> Path:
    """A file that takes every free byte of `disk`; returns it (delete it to free the space)."""
    filler = disk / "filler"
    with filler.open("ab", buffering=0) as f:
        for size in (65536, 4096, 1):  # then the tails that the bigger writes could not take
            with contextlib.suppress(OSError):
                while True:
                    f.write(b"\0" * size)
    return filler


@contextmanager
def immutable(folder: Path) -> Iterator[Path]:
    """`folder` made immutable (chattr +i: no file in it can be created, renamed or removed,
    even by root) for the block's length."""
    if shutil.which("chattr") is None or os.geteuid() != 0:
        pytest.skip("chattr +i needs the chattr tool and root")
    made = subprocess.run(["chattr", "+i", str(folder)], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"chattr +i does not work here: {made.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True)


def save_error_line(code: int, err: str) -> str:
    """The one line a command printed when its work could not be saved (exit 73), checked to
    be the only error line and to come without a traceback."""
    assert "Traceback" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("heroforge: error: ")]
    assert len(errors) == 1, err
    assert code == 73, err
    return errors[0].removeprefix("heroforge: error: ")
