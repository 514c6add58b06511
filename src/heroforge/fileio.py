"""Atomic file writes: a reader sees the old file or the new one, never half of one. And the
guard that every write of a training run goes through (SaveGuard)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, TypeVar

from heroforge.errors import SaveError, save_failure

T = TypeVar("T")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_file(path: str | os.PathLike[str], durable: bool = True) -> Iterator[BinaryIO]:
    """A binary file to write that appears at `path` only when the block finishes.

    It is written as a temp file beside path and renamed over it; on any error (Ctrl-C too)
    the temp file is removed and an existing file at path stays as it was. durable=True also
    fsyncs the file and its directory so the write survives a power cut; bulk outputs that can
    be regenerated pass False to skip the (slow) syncs.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        with os.fdopen(fd, "w+b") as f:
            yield f
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if durable:
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, durable: bool = True) -> None:
    with atomic_file(path, durable) as f:
        f.write(data)


def atomic_write_text(path: str | os.PathLike[str], text: str, durable: bool = True) -> None:
    atomic_write_bytes(path, text.encode("utf-8"), durable)


class SaveGuard:
    """The writes of a training run (checkpoints, config, stats, TensorBoard, sample grids,
    markers) go through one guard. The first that fails is kept as a one-line SaveError naming
    the file, and the caller goes on without raising; the trainer stops at its next point that
    every process agrees on and raises it there (exit 73). Raising at the failed write itself
    would leave the other processes waiting for this one inside a collective."""

    def __init__(self) -> None:
        self.failure: SaveError | None = None

    def write(self, path: str | os.PathLike[str], action: Callable[[], T]) -> T | None:
        """action() (which writes path); None if it failed with an OSError (kept if the first)."""
        try:
            return action()
        except OSError as err:
            if self.failure is None:
                self.failure = save_failure(f"cannot write {path}", err)
            return None
