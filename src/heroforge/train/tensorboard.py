"""TensorBoard scalars and sample grids of a run (RUN/tensorboard), when the optional
`tensorboard` package is installed; without it, one log line and nothing else. One of the
trackers of trackers.py (the default).

The global step is the number of real images shown (kimg x 1000), as in stats.jsonl. A resumed
or rolled-back run reopens the writer with purge_step = checkpoint step + 1: TensorBoard then
hides what the previous session logged after that checkpoint, so every step appears once.

Writes that fail (a full disk) are kept by the run's SaveGuard, which stops the run; the
writer's own thread, which meets them first, is kept from printing them as a traceback.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from heroforge import rundir
from heroforge.console import Log
from heroforge.fileio import SaveGuard

SKIP = ("tick", "kimg", "step", "time", "elapsed_s")  # counters, not curves


def curves(record: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """The numbers of a stats record worth a curve, by tag: loss/G, progress/rt, metrics/fid
    (TensorBoard's tags, which every tracker of trackers.py uses)."""
    out = {}
    for key, value in record.items():
        if key in SKIP or isinstance(value, bool) or not isinstance(value, int | float):
            continue
        tag = f"{prefix}/{key}" if prefix else key if "/" in key else f"progress/{key}"
        out[tag] = float(value)
    return out


def _writer(folder: Path, purge_step: int) -> Any:
    """A writer whose event file sorts after every earlier one. TensorBoard reads a folder's
    files in name order; names start with the creation second, then a per-process counter
    (which sorts "10" before "9"), so a file made in the same second as an earlier one could
    load first and have its steps dropped as out of order. Waits for the next second instead
    (rarely, and never more than one second)."""
    from torch.utils.tensorboard import SummaryWriter

    latest = 0
    for path in folder.glob("events.out.tfevents.*"):
        stamp = path.name.split(".")[3]
        latest = max(latest, int(stamp) if stamp.isdigit() else 0)
    while time.time() < latest + 1:
        time.sleep(0.05)
    return SummaryWriter(str(folder), purge_step=purge_step)


def _quiet_writer_thread(args: threading.ExceptHookArgs) -> None:
    """threading.excepthook that lets pass an OSError in TensorBoard's writer thread: the
    thread keeps it, and the board's next call raises it in the training thread, where the
    run's SaveGuard turns it into one line. Anything else is printed as before."""
    if isinstance(args.exc_value, OSError) and type(args.thread).__module__.startswith(
        "tensorboard."
    ):
        return
    _printing_hook(args)


_printing_hook = threading.excepthook


class ScalarBoard:
    def __init__(self, folder: Path, writer: Any, writes: SaveGuard) -> None:
        self.folder, self.writer, self.writes = folder, writer, writes

    @classmethod
    def open(cls, run_dir: Path, nimg: int, log: Log, writes: SaveGuard) -> ScalarBoard | None:
        """A board continuing at nimg images, or None: logged if TensorBoard is missing, kept
        by `writes` if its event file cannot be written."""
        global _printing_hook
        try:
            import torch.utils.tensorboard  # noqa: F401  (needs the tensorboard package)
        except ImportError:
            log("TensorBoard scalars are off: `pip install tensorboard` turns them on")
            return None
        if threading.excepthook is not _quiet_writer_thread:
            _printing_hook, threading.excepthook = threading.excepthook, _quiet_writer_thread
        folder = run_dir / rundir.TENSORBOARD
        writer = writes.write(folder, lambda: _writer(folder, nimg + 1))
        return None if writer is None else cls(folder, writer, writes)

    def reopen(self, nimg: int) -> None:
        """After a rollback to nimg: later steps of the abandoned branch disappear."""
        self.close()
        self.writer = self.writes.write(self.folder, lambda: _writer(self.folder, nimg + 1))

    def scalars(self, record: dict[str, Any], nimg: int, prefix: str = "") -> None:
        walltime = record.get("time")
        values = curves(record, prefix)

        def add(writer: Any) -> None:
            for tag, value in values.items():
                writer.add_scalar(tag, value, global_step=nimg, walltime=walltime)

        self._guarded(add)

    def image(self, tag: str, picture: Image.Image, nimg: int) -> None:
        pixels = np.asarray(picture.convert("RGB"))
        self._guarded(
            lambda writer: writer.add_image(tag, pixels, global_step=nimg, dataformats="HWC")
        )

    def flush(self) -> None:
        self._guarded(lambda writer: writer.flush())

    def close(self) -> None:
        self._guarded(lambda writer: writer.close())

    def _guarded(self, action: Callable[[Any], None]) -> None:
        """action(writer) through the run's SaveGuard; nothing once reopening has failed."""
        writer = self.writer
        if writer is not None:
            self.writes.write(self.folder, lambda: action(writer))
