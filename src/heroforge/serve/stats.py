"""A run's stats.jsonl as the job page plots it, read incrementally and answered from a cache.

The trainer appends to the file while we read it, and a page polls it every few seconds for
days (a 25,000 kimg run has ~6,000 ticks). So each file is parsed once, afterwards only its new
complete lines are, and each answer (as JSON bytes) is kept until the file grows. A resume or a
rollback rewrites the file atomically (a new inode): then it is parsed again from the top.
"""

from __future__ import annotations

import json
import math
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

NOT_PLOTTED = ("time", "tick", "step", "eta_s", "rss_mb", "gpu_mem_mb", "pl_mean")


@dataclass
class PlotData:
    """The records of one file, sorted by kind, cleaned for JSON."""

    ticks: list[dict[str, Any]] = field(default_factory=list)  # numbers only
    metrics: list[dict[str, Any]] = field(default_factory=list)
    verdicts: list[dict[str, Any]] = field(default_factory=list)
    notes: list[dict[str, Any]] = field(default_factory=list)  # signals, failed checkpoints...
    keys: set[str] = field(default_factory=set)
    damaged: list[int] = field(default_factory=list)  # numbers of complete lines not a record

    def add(self, record: dict[str, Any]) -> None:
        event = record.get("event")
        if event is None and _number(record.get("kimg")):
            tick = {k: v for k, v in record.items() if k not in NOT_PLOTTED and _number(v)}
            self.ticks.append(tick)
            self.keys.update(tick)
        elif event == "metrics":
            self.metrics.append(_finite(record))
        elif event == "verdict":
            self.verdicts.append(_finite(record))
        elif isinstance(event, str):
            self.notes.append({"time": record.get("time"), "event": event})

    def answer(self, max_points: int = 0) -> dict[str, Any]:
        """Everything, with at most max_points ticks (evenly spaced; 0 = all)."""
        return {
            "count": len(self.ticks),
            "keys": sorted(self.keys - {"kimg"}),
            "ticks": thin(self.ticks, max_points),
            "metrics": self.metrics,
            "verdicts": self.verdicts,
            "notes": self.notes,
        }

    def newest(self) -> dict[str, Any]:
        """What the run list shows: the newest tick's kimg, s/kimg and size in kimg, the best
        FID measured, and the damaged lines."""
        last = self.ticks[-1] if self.ticks else {}
        before = self.ticks[-2]["kimg"] if len(self.ticks) > 1 else 0.0
        fids = [m for m in self.metrics if _number(m.get("fid"))]
        best = min(fids, key=lambda m: m["fid"], default={})
        return {
            "kimg": last.get("kimg"),
            "sec_per_kimg": last.get("sec_per_kimg"),
            "tick_kimg": last["kimg"] - before if last else None,
            "best_fid": best.get("fid"),
            "best_fid_kimg": best.get("kimg"),
            "damaged_lines": self.damaged,
        }


def plot_data(records: list[dict[str, Any]], max_points: int = 0) -> dict[str, Any]:
    data = PlotData()
    for record in records:
        data.add(record)
    return data.answer(max_points)


def thin(items: list[dict[str, Any]], max_points: int) -> list[dict[str, Any]]:
    """At most max_points items, evenly spaced, always keeping the first and the last."""
    if max_points <= 0 or len(items) <= max_points:
        return items
    if max_points == 1:
        return items[-1:]
    step = (len(items) - 1) / (max_points - 1)
    return [items[round(i * step)] for i in range(max_points)]


def _number(value: Any) -> bool:
    # NaN and infinity (a diverged loss) cannot travel in JSON: the plot shows a gap there
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _finite(record: dict[str, Any]) -> dict[str, Any]:
    return {
        k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in record.items()
    }


@dataclass
class _File:
    inode: int
    offset: int = 0  # bytes parsed: always the end of a complete line
    lines: int = 0  # complete lines parsed
    size: int = 0  # of the file at the last look: beyond offset lies a line being written
    data: PlotData = field(default_factory=PlotData)
    answers: dict[tuple, bytes] = field(default_factory=dict)  # valid until offset moves


class StatsCache:
    """Parsed stats files and their JSON answers (see the module docstring)."""

    def __init__(self, max_files: int = 16) -> None:
        self.max_files = max_files
        self._files: OrderedDict[Path, _File] = OrderedDict()
        self._lock = threading.Lock()

    def plot_json(self, path: Path, max_points: int = 0, **extra: Any) -> bytes:
        """PlotData.answer(max_points) with `extra` keys, as JSON bytes; a missing file has
        no records."""
        with self._lock:
            entry = self._update(path)
            key = (max_points, *sorted(extra.items()))
            if key not in entry.answers:
                answer = {**extra, **entry.data.answer(max_points)}
                text = json.dumps(answer, allow_nan=False, separators=(",", ":"))
                entry.answers[key] = text.encode()
            return entry.answers[key]

    def newest(self, path: Path) -> dict[str, Any]:
        """PlotData.newest() of the file, and whether it ends in a line not yet complete."""
        with self._lock:
            entry = self._update(path)
            return {**entry.data.newest(), "torn_tail": entry.size > entry.offset}

    def _update(self, path: Path) -> _File:
        try:
            st = path.stat()
            inode, size = st.st_ino, st.st_size
        except OSError:
            inode, size = -1, 0
        entry = self._files.pop(path, None)
        if entry is None or entry.inode != inode or size < entry.offset:
            entry = _File(inode=inode)
        if size > entry.offset:
            self._read_more(path, entry)
        entry.size = size
        self._files[path] = entry
        while len(self._files) > self.max_files:
            self._files.popitem(last=False)
        return entry

    @staticmethod
    def _read_more(path: Path, entry: _File) -> None:
        try:
            with path.open("rb") as f:
                inode = os.fstat(f.fileno()).st_ino
                if inode != entry.inode:  # replaced between stat and open
                    entry.inode, entry.offset, entry.lines = inode, 0, 0
                    entry.data = PlotData()
                    entry.answers.clear()
                f.seek(entry.offset)
                chunk = f.read()
        except OSError:
            return
        end = chunk.rfind(b"\n") + 1  # a torn last line waits for the next read
        if end == 0:
            return
        for number, line in enumerate(chunk[:end].splitlines(), start=entry.lines + 1):
            try:
                record = json.loads(line)
            except ValueError:
                record = None
            if isinstance(record, dict):
                entry.data.add(record)
            else:  # a write cut short and appended after (a kill, a full disk)
                entry.data.damaged.append(number)
            entry.lines = number
        entry.offset += end
        entry.answers.clear()
