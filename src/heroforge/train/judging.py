"""The judgement points of a run: at every cycle end, every metrics measurement and the end.

There the main process measures the metrics (when enabled), gives the stability verdict
(stability.py) and moves `best` to a better FID only if the snapshot is stable; with
stability.rollback an unstable verdict sends every process back to the best stable snapshot
(rollback.py). The checkpoint written right after a judgement carries all of it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from heroforge.nets.weights import load_networks
from heroforge.runtime.dist import broadcast_object
from heroforge.train import checkpoint as ckpt
from heroforge.train import rollback, stability
from heroforge.train.stability import Verdict

if TYPE_CHECKING:
    from heroforge.train.loop import Trainer


def due(trainer: Trainer, done: bool) -> bool:
    """At the end of every cycle, every metrics.every_kimg (with metrics on) and at the
    end of the run: the same answer on every process."""
    p, mc, tc = trainer.progress, trainer.cfg.metrics, trainer.cfg.train
    before = p.nimg - tc.batch

    def crossed(every_kimg: float) -> bool:
        return int(before // (every_kimg * 1000)) < int(p.nimg // (every_kimg * 1000))

    periodic = mc.enabled and mc.every_kimg and crossed(mc.every_kimg)
    return done or crossed(tc.cycle_kimg) or bool(periodic)


def measure(trainer: Trainer) -> dict | None:
    """The metrics (when enabled), computed by every process, each generating its share of
    the images; the result on rank 0, None elsewhere."""
    if not trainer.cfg.metrics.enabled:
        return None
    from heroforge.metrics.evaluate import evaluate  # Inception only when metrics are due

    info = trainer.dist
    metrics = trainer.cfg.metrics
    return evaluate(
        trainer.G_ema, trainer.dataset, metrics, info.device, rank=info.rank, world=info.world
    )


def judge(trainer: Trainer, result: dict | None, log: Any) -> Verdict:
    """The stability verdict, with the metrics `measure` gave (None: metrics are off); `best`
    moves only to a better FID of a stable snapshot. The checkpoint written right after
    carries both."""
    p = trainer.progress
    kimg = round(p.nimg / 1000, 3)
    history = p.extra.setdefault("stability", {})
    if result is not None:
        result["kimg"] = kimg
        p.extra["metrics"] = result
        stability.remember_fid(history, kimg, result["fid"])
        if trainer.stats:
            trainer.stats.write({"event": "metrics", **result})
        if trainer.board:
            trainer.board.scalars(result, p.nimg, prefix="metrics")
        log(f"metrics at {kimg} kimg: FID {result['fid']:.2f}")
    verdict = trainer.verdict()
    if trainer.stats:
        trainer.stats.write({"event": "verdict", "kimg": kimg, **verdict.to_dict()})
    if trainer.board:
        trainer.board.scalars({"unstable": int(not verdict.stable)}, p.nimg, prefix="stability")
    best = p.extra.get("best")
    if result and verdict.stable and (best is None or result["fid"] < best["fid"]):
        p.extra["best"] = {"fid": result["fid"], "nimg": p.nimg}
    history["given"] = {"nimg": p.nimg, **verdict.to_dict()}
    stability.close_window(history, trainer.cfg.stability)  # the next verdict: ticks from here
    log(f"verdict at {kimg} kimg: {verdict.label}" + "".join(f"; {r}" for r in verdict.reasons))
    return verdict


def roll_back_if(trainer: Trainer, verdict: Verdict | None, log: Any) -> bool:
    """Rank 0 decides (and first checks that the best snapshot loads); every rank then
    restores it. True if the run went back."""
    checkpoint = rollback.best_to_return_to(trainer, verdict, log) if trainer.dist.main else None
    path = broadcast_object(None if checkpoint is None else str(checkpoint.path))
    if path is None:
        return False
    if checkpoint is None:
        checkpoint = ckpt.Checkpoint(Path(path), load_networks(path, "cpu"))
    rollback.roll_back(trainer, checkpoint, verdict.reasons if verdict else (), log)
    if trainer.board:
        trainer.board.reopen(trainer.progress.nimg)
    return True
