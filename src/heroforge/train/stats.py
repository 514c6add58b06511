"""Training statistics: per-tick JSON lines, tick averages, and the fixed-seed sample grid."""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image

from heroforge import rundir
from heroforge.fileio import SaveGuard, atomic_file, atomic_write_text
from heroforge.runtime.dist import distributed_sum

if TYPE_CHECKING:
    from heroforge.augment import AdaController
    from heroforge.train.state import Progress


class TickStats:
    """Sums of per-chunk statistics, kept on the device until the tick ends (no sync per step)."""

    def __init__(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.counts: dict[str, int] = {}

    def add(self, stats: dict[str, torch.Tensor]) -> None:
        for key, value in stats.items():
            value = value.detach().float().mean()
            self.sums[key] = self.sums[key] + value if key in self.sums else value
            self.counts[key] = self.counts.get(key, 0) + 1

    def means(self) -> dict[str, float]:
        """Means over every process's chunks (each process sums its own; the losses that the
        stability verdict reads would otherwise come from rank 0's share of the data)."""
        keys = sorted(self.sums)
        if not keys:
            return {}
        sums = torch.stack([self.sums[k] for k in keys]).double()
        counts = torch.tensor([self.counts[k] for k in keys], dtype=torch.float64)
        both = distributed_sum(torch.cat([sums, counts.to(sums.device)])).cpu()
        sums, counts = both[: len(keys)], both[len(keys) :]
        return {k: round(float(v / n), 6) for k, v, n in zip(keys, sums, counts, strict=True)}


class StatsLog:
    """stats.jsonl of a run. A resume first drops what was logged after its checkpoint, so the
    kimg sequence has neither gaps nor duplicates. A write that fails is kept by `writes` (the
    run stops at its next agreed point) instead of raising here."""

    def __init__(self, path: Path, writes: SaveGuard) -> None:
        self.path, self.writes = path, writes
        path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, record: dict) -> None:
        line = json.dumps({"time": round(time.time(), 3), **record}) + "\n"
        self.writes.write(self.path, lambda: self._append(line))

    def _append(self, line: str) -> None:
        with self.path.open("a", encoding="utf-8") as f:
            f.write(line)

    def note(self, message: str) -> None:
        self.write({"event": message})

    def truncate_after(self, nimg: int) -> None:
        self.move_after(nimg, None)

    def move_after(self, nimg: int, other: Path | None) -> int:
        """Drop the lines logged after nimg images (appending them to `other`, if given);
        returns how many lines went (0 if the files could not be written)."""
        return self.writes.write(self.path, lambda: self._move_after(nimg, other)) or 0

    def _move_after(self, nimg: int, other: Path | None) -> int:
        if not self.path.exists():
            return 0
        kept: list[str] = []
        moved: list[str] = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a line torn by a crash
            after = "kimg" in record and round(record["kimg"] * 1000) > nimg
            (moved if after else kept).append(line + "\n")
        if other is not None and moved:
            with other.open("a", encoding="utf-8") as f:
                f.write("".join(moved))
                f.flush()
                os.fsync(f.fileno())  # on disk before the lines leave stats.jsonl
        atomic_write_text(self.path, "".join(kept))
        return len(moved)


def tick_record(
    progress: Progress, seconds: float, target: int, ada: AdaController, precision: str
) -> dict[str, Any]:
    """The JSON line of a tick that took `seconds` (without its loss means): where the run is,
    its speed, ETA to `target` images, ADA's state, memory, precision and threads."""
    p = progress
    kimg_done = (p.nimg - p.tick_start_nimg) / 1000
    sec_per_kimg = seconds / max(kimg_done, 1e-9)
    return {
        "tick": p.tick,
        "kimg": round(p.nimg / 1000, 3),
        "step": p.step,
        "sec_per_kimg": round(sec_per_kimg, 3),
        "img_per_s": round(kimg_done * 1000 / seconds, 2),
        "augment_p": round(ada.p, 5),
        "rt": None if ada.rt is None else round(ada.rt, 4),
        "eta_s": round(sec_per_kimg * max(0, target - p.nimg) / 1000, 1),
        "elapsed_s": round(p.elapsed_s, 1),
        "rss_mb": round(peak_rss_mb(), 1),
        "precision": precision,
        "threads": torch.get_num_threads(),  # the supervisor sizes it (manager/cpus.py)
    }


def tick_line(record: dict[str, Any]) -> str:
    """The console line of a tick record."""
    return (
        f"tick {record['tick']:<5d} kimg {record['kimg']:<9.3f} "
        f"s/kimg {record['sec_per_kimg']:<8.2f} "
        f"G {record.get('loss/G', math.nan):.3f} D {record.get('loss/D', math.nan):.3f} "
        f"p {record['augment_p']:.3f} {record['precision']} eta {record['eta_s'] / 60:.1f} min"
    )


def grid_name(nimg: int) -> str:
    """The sample grid's file name at nimg images: exact, as checkpoints come every fraction of
    a kimg on small runs."""
    return f"grid-{nimg // 1000:06d}.{nimg % 1000:03d}kimg.png"


@torch.no_grad()
def sample_grid(
    G: torch.nn.Module,  # noqa: N803
    z: torch.Tensor,
    c_dim: int,
    device: torch.device,
    columns: int = 8,
) -> Image.Image:
    """Images of fixed latents, tiled; the same latents at every snapshot show progress."""
    images = []
    for chunk in z.split(8):
        c = torch.zeros([chunk.shape[0], c_dim], device=device) if c_dim else None
        img = G(chunk.to(device, torch.float32), c, noise_mode="const")
        images.append(img.cpu())
    img = torch.cat(images)
    img = (img * 127.5 + 128).clamp(0, 255).to(torch.uint8)
    n, ch, h, w = img.shape
    rows = -(-n // columns)
    grid = np.full((rows * h, columns * w, ch), 255, np.uint8)
    for i in range(n):
        r, col = divmod(i, columns)
        grid[r * h : (r + 1) * h, col * w : (col + 1) * w] = img[i].permute(1, 2, 0).numpy()
    return Image.fromarray(grid[..., 0] if ch == 1 else grid)


def write_grid(grid: Image.Image, path: Path) -> None:
    """Save a sample grid as PNG, atomically: a full disk leaves no half image behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path, durable=False) as f:  # a lost grid is drawn again from its checkpoint
        grid.save(f, format="PNG")


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM) in MiB; 0 where /proc is missing."""
    try:
        with open(f"/proc/{os.getpid()}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def read_stats(run_dir: Path) -> list[dict]:
    path = Path(run_dir) / rundir.STATS
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
