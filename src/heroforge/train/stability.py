"""Is training still healthy? A verdict from the per-tick statistics and the FID history.

The reference run failed late in the usual StyleGAN2-ADA way: D wins outright (its loss on
fakes falls towards 0, i.e. it scores every fake strongly negative), ADA's r_t stays pinned
near 1 although p is already high (augmentation can no longer keep D from memorising the
reals), and FID climbs while the generator degrades. Each becomes one signal, plus non-finite
losses; any signal makes the verdict "unstable".

A verdict covers the ticks since the previous verdict: a D that won for patience_ticks in a
row and then bounced back still marks the snapshot (seen on a tiny run with an 8x D learning
rate: D's loss on fakes stayed under 0.015 for 5 ticks, then jumped to 2.3). The last
patience_ticks - 1 ticks carry over, so a stretch of bad ticks spanning two verdicts counts
whole.

Everything here is pure: the loop keeps a StabilityHistory (in the checkpointed progress, so a
resumed run judges exactly as the uninterrupted one) and asks it for a verdict at every
snapshot.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeGuard

from heroforge.config import StabilityConfig

# What the history keeps of a tick record (see loop.Trainer._end_tick and loss.py).
TICK_FIELDS = ("kimg", "loss/G", "loss/D", "loss/D_fake", "loss/r1", "loss/pl", "rt", "augment_p")
LOSS_FIELDS = ("loss/G", "loss/D", "loss/D_fake", "loss/r1", "loss/pl")
MAX_TICKS = 2000  # bound between two verdicts (a 5,000 kimg cycle without metrics has 1,250)


@dataclass(frozen=True)
class Verdict:
    stable: bool
    reasons: tuple[str, ...] = ()  # why not, one short phrase per signal; empty when stable

    @property
    def label(self) -> str:
        return "stable" if self.stable else "unstable"

    def to_dict(self) -> dict[str, Any]:
        return {"verdict": self.label, "reasons": list(self.reasons)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Verdict:
        return cls(data["verdict"] == "stable", tuple(data["reasons"]))


@dataclass
class StabilityHistory:
    """What verdicts judge: the ticks since the last verdict (less patience_ticks - 1 carried
    over), every FID, and the last verdict given. Part of the checkpointed progress, so a
    resumed run judges exactly as the uninterrupted one."""

    ticks: list[dict[str, Any]] = field(default_factory=list)  # TICK_FIELDS of each tick
    fids: list[tuple[float, float]] = field(default_factory=list)  # (kimg, FID), oldest first
    given: tuple[int, Verdict] | None = None  # the last verdict and the images it was given at

    def remember_tick(self, record: Mapping[str, Any]) -> None:
        """Add a tick record's signals."""
        self.ticks.append({k: record[k] for k in TICK_FIELDS if k in record})
        del self.ticks[:-MAX_TICKS]

    def remember_fid(self, kimg: float, fid: float) -> None:
        self.fids.append((kimg, fid))

    def judge(self, cfg: StabilityConfig) -> Verdict:
        return judge(self.ticks, [f for _, f in self.fids], cfg)

    def verdict_at(self, nimg: int, cfg: StabilityConfig) -> Verdict:
        """The verdict given at nimg if there was one (its ticks are gone from the history
        since), else the verdict on the history as it stands."""
        if self.given is not None and self.given[0] == nimg:
            return self.given[1]
        return self.judge(cfg)

    def give(self, nimg: int, verdict: Verdict, cfg: StabilityConfig) -> None:
        """Record a verdict and start the next window: keep only the ticks that a stretch of
        bad ones could continue from."""
        self.given = (nimg, verdict)
        del self.ticks[: max(0, len(self.ticks) - (cfg.patience_ticks - 1))]

    def to_json(self) -> dict[str, Any]:
        """The form checkpoints keep (as written before this class existed; keys only when
        there is something to keep)."""
        out: dict[str, Any] = {"ticks": self.ticks}
        if self.fids:
            out["fids"] = [list(f) for f in self.fids]
        if self.given is not None:
            out["given"] = {"nimg": self.given[0], **self.given[1].to_dict()}
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> StabilityHistory:
        given = data.get("given")
        return cls(
            ticks=[dict(t) for t in data.get("ticks", [])],
            fids=[(kimg, fid) for kimg, fid in data.get("fids", [])],
            given=None if given is None else (given["nimg"], Verdict.from_dict(given)),
        )


def _finite(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and math.isfinite(value)


def _longest_run(ticks: Sequence[Mapping[str, Any]], test: Any) -> list[Mapping[str, Any]]:
    """The longest stretch of consecutive ticks that pass test."""
    best, start = (0, 0), 0
    for i, t in enumerate(ticks):
        if not test(t):
            start = i + 1
        elif i + 1 - start > best[1] - best[0]:
            best = (start, i + 1)
    return list(ticks[best[0] : best[1]])


def judge(
    ticks: Sequence[Mapping[str, Any]],  # the ticks to judge, oldest first (with TICK_FIELDS)
    fids: Sequence[float],  # every FID measured so far, oldest first
    cfg: StabilityConfig,  # thresholds
) -> Verdict:
    """ "stable" unless one of the signals holds; the reasons name each signal that does.
    A per-tick signal must hold in patience_ticks consecutive ticks somewhere in `ticks`."""
    reasons = []
    n = cfg.patience_ticks
    for t in ticks:
        broken = [k for k in LOSS_FIELDS if k in t and not _finite(t[k])]
        if broken:  # one tick is enough: a non-finite loss means non-finite outputs
            reasons.append(f"non-finite {', '.join(broken)} at {t.get('kimg')} kimg")
            break

    def fake_loss_low(t: Mapping[str, Any]) -> bool:
        return _finite(t.get("loss/D_fake")) and t["loss/D_fake"] < cfg.fake_loss_below

    run = _longest_run(ticks, fake_loss_low)
    if len(run) >= n:
        worst = max(t["loss/D_fake"] for t in run)
        reasons.append(
            f"D's loss on fakes below {cfg.fake_loss_below:g} for {len(run)} ticks "
            f"(at most {worst:.3g})"
        )

    def rt_pinned(t: Mapping[str, Any]) -> bool:
        rt, p = t.get("rt"), t.get("augment_p")
        return _finite(rt) and _finite(p) and rt > cfg.rt_above and p > cfg.p_above

    run = _longest_run(ticks, rt_pinned)
    if len(run) >= n:
        reasons.append(
            f"r_t above {cfg.rt_above:g} with ADA p above {cfg.p_above:g} for {len(run)} ticks"
        )

    if fids and not _finite(fids[-1]):
        reasons.append(f"FID is {fids[-1]}")
    finite = [f for f in fids if _finite(f)]
    last = list(fids[-cfg.fid_patience :])
    if finite and len(last) == cfg.fid_patience:
        best = min(finite)
        bound = best * (1 + cfg.fid_margin)
        if all(_finite(f) and f > bound for f in last):
            reasons.append(
                f"FID {last[-1]:.2f} more than {cfg.fid_margin:.0%} over the best {best:.2f} "
                f"for {cfg.fid_patience} measurements"
            )
    return Verdict(not reasons, tuple(reasons))
