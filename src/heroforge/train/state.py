"""The run's counters and judgement state, typed, and the JSON form each checkpoint keeps.

The JSON form is the one checkpoints have always had: the counters, and under "extra" the
stability history, the best stable snapshot and the last metrics. So every checkpoint on disk,
old or new, resumes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from heroforge.train.stability import StabilityHistory


@dataclass(frozen=True)
class Best:
    """The stable snapshot with the lowest FID so far: what a rollback returns to and what
    best.json names."""

    fid: float
    nimg: int  # images shown at that snapshot (its checkpoint's name)


@dataclass(frozen=True)
class MetricsResult:
    """One measurement of the metrics (metrics/evaluate.py) at a point of the run."""

    kimg: float
    values: dict[
        str, float | int
    ]  # fid, and kid, precision, recall, num_real, num_fake when measured

    @property
    def fid(self) -> float:
        return self.values["fid"]

    def to_json(self) -> dict[str, Any]:
        return {**self.values, "kimg": self.kimg}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MetricsResult:
        values = {k: v for k, v in data.items() if k != "kimg"}
        return cls(kimg=data["kimg"], values=values)


@dataclass
class Progress:
    """Every counter of the run and what its verdicts are based on; saved in each checkpoint."""

    nimg: int = 0  # real images shown so far
    step: int = 0  # global minibatches done
    tick: int = 0  # ticks done
    tick_start_nimg: int = 0
    elapsed_s: float = 0.0  # training time over all sessions (not counting downtime)
    stability: StabilityHistory = field(default_factory=StabilityHistory)
    best: Best | None = None  # None until a stable snapshot has a FID
    metrics: MetricsResult | None = None  # the last measurement; None while there is none

    def to_json(self) -> dict[str, Any]:
        extra: dict[str, Any] = {"stability": self.stability.to_json()}
        if self.metrics is not None:
            extra["metrics"] = self.metrics.to_json()
        if self.best is not None:
            extra["best"] = {"fid": self.best.fid, "nimg": self.best.nimg}
        return {
            "nimg": self.nimg,
            "step": self.step,
            "tick": self.tick,
            "tick_start_nimg": self.tick_start_nimg,
            "elapsed_s": self.elapsed_s,
            "extra": extra,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Progress:
        extra = data.get("extra", {})
        best, metrics = extra.get("best"), extra.get("metrics")
        return cls(
            nimg=data["nimg"],
            step=data["step"],
            tick=data["tick"],
            tick_start_nimg=data["tick_start_nimg"],
            elapsed_s=data["elapsed_s"],
            stability=StabilityHistory.from_json(extra.get("stability", {})),
            best=None if best is None else Best(fid=best["fid"], nimg=best["nimg"]),
            metrics=None if metrics is None else MetricsResult.from_json(metrics),
        )
