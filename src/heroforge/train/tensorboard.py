"""TensorBoard scalars of a run (RUN/tensorboard), when the optional `tensorboard` package is
installed; without it, one log line and nothing else.

The global step is the number of real images shown (kimg x 1000), as in stats.jsonl. A resumed
or rolled-back run reopens the writer with purge_step = checkpoint step + 1: TensorBoard then
hides what the previous session logged after that checkpoint, so every step appears once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

SKIP = ("tick", "kimg", "step", "time", "elapsed_s")  # counters, not curves


def _tag(key: str) -> str:
    return key if "/" in key else f"progress/{key}"


class ScalarBoard:
    def __init__(self, folder: Path, writer: Any) -> None:
        self.folder, self.writer = folder, writer

    @classmethod
    def open(cls, run_dir: Path, nimg: int, log: Any) -> ScalarBoard | None:
        """A board continuing at nimg images, or None (logged) if TensorBoard is missing."""
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            log("TensorBoard scalars are off: `pip install tensorboard` turns them on")
            return None
        folder = run_dir / "tensorboard"
        return cls(folder, SummaryWriter(str(folder), purge_step=nimg + 1))

    def reopen(self, nimg: int) -> None:
        """After a rollback to nimg: later steps of the abandoned branch disappear."""
        from torch.utils.tensorboard import SummaryWriter

        self.writer.close()
        self.writer = SummaryWriter(str(self.folder), purge_step=nimg + 1)

    def scalars(self, record: dict[str, Any], nimg: int, prefix: str = "") -> None:
        walltime = record.get("time")
        for key, value in record.items():
            if key in SKIP or isinstance(value, bool) or not isinstance(value, int | float):
                continue
            tag = f"{prefix}/{key}" if prefix else _tag(key)
            self.writer.add_scalar(tag, value, global_step=nimg, walltime=walltime)

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
