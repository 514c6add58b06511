"""Checks of user-given folders and counts that several commands share, worded once."""

from __future__ import annotations

import math
import os
from pathlib import Path

from heroforge.errors import UserError


def require_folder(path: Path, option: str, what: str) -> None:
    """An output folder (made if missing) must not be an existing file."""
    if path.exists() and not path.is_dir():
        raise UserError(f"{option} {path} is a file; give a folder for {what}")


def worker_count(workers: int) -> int:
    """--workers: the number of processes, 0 meaning one per CPU core."""
    if workers < 0:
        raise UserError(f"--workers must be 0 (one per CPU core) or more, got {workers}")
    return workers or os.cpu_count() or 1


def target_kimg(kimg: float, what: str = "--kimg") -> float:
    """A training length: a finite number of kimg above 0. `train` and `queue submit` both
    check it here, so that the queue never holds a job its trainer would refuse."""
    if not (math.isfinite(kimg) and kimg > 0):
        raise UserError(f"{what} must be a positive number of kimg, got {kimg}")
    return kimg
