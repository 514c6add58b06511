"""The judgement points of a run: at every cycle end, every metrics measurement and the end.

There every process measures the metrics (when enabled), the main process gives the stability
verdict (stability.py) and moves `best` to a better FID only if the snapshot is stable; with
stability.rollback an unstable verdict sends every process back to the best stable snapshot
(rollback.py, driven by the Trainer). The checkpoint written right after a judgement carries
all of it. The functions take the pieces they need, not the Trainer.
"""

from __future__ import annotations

from heroforge.config import Config, MetricsConfig, StabilityConfig
from heroforge.console import Log
from heroforge.data.dataset import ImageDataset
from heroforge.nets.generator import Generator
from heroforge.runtime.dist import DistInfo
from heroforge.train.stability import Verdict
from heroforge.train.state import Best, MetricsResult, Progress
from heroforge.train.stats import StatsLog
from heroforge.train.trackers import Tracker


def due(progress: Progress, cfg: Config, done: bool) -> bool:
    """At the end of every cycle, every metrics.every_kimg (with metrics on) and at the
    end of the run: the same answer on every process."""
    mc, tc = cfg.metrics, cfg.train
    before = progress.nimg - tc.batch

    def crossed(every_kimg: float) -> bool:
        return int(before // (every_kimg * 1000)) < int(progress.nimg // (every_kimg * 1000))

    periodic = mc.enabled and mc.every_kimg and crossed(mc.every_kimg)
    return done or crossed(tc.cycle_kimg) or bool(periodic)


def measure(
    G_ema: Generator,  # noqa: N803  (the networks' names as everywhere in heroforge)
    dataset: ImageDataset,
    cfg: MetricsConfig,
    dist: DistInfo,
) -> dict[str, float | int] | None:
    """The metrics (when enabled), computed by every process, each generating its share of
    the images; the result on rank 0, None elsewhere."""
    if not cfg.enabled:
        return None
    from heroforge.metrics.evaluate import evaluate  # Inception only when metrics are due

    return evaluate(G_ema, dataset, cfg, dist.device, rank=dist.rank, world=dist.world)


def judge(
    progress: Progress, result: dict[str, float | int] | None, cfg: StabilityConfig
) -> Verdict:
    """The stability verdict, with the metrics `measure` gave (None: metrics are off),
    recorded in progress; `best` moves only to a better FID of a stable snapshot."""
    kimg = round(progress.nimg / 1000, 3)
    if result is not None:
        progress.metrics = MetricsResult(kimg, result)
        progress.stability.remember_fid(kimg, result["fid"])
    verdict = progress.stability.judge(cfg)
    best = progress.best
    if result is not None and verdict.stable and (best is None or result["fid"] < best.fid):
        progress.best = Best(fid=result["fid"], nimg=progress.nimg)
    progress.stability.give(progress.nimg, verdict, cfg)  # the next verdict: ticks from here
    return verdict


def report(
    progress: Progress,
    verdict: Verdict,
    measured: bool,  # metrics were measured at this point (they are progress.metrics)
    stats: StatsLog | None,
    board: Tracker | None,
    log: Log,
) -> None:
    """The metrics and the verdict in stats.jsonl, the tracker and the log."""
    kimg = round(progress.nimg / 1000, 3)
    if measured and progress.metrics is not None:
        metrics = progress.metrics
        if stats:
            stats.write({"event": "metrics", **metrics.to_json()})
        if board:
            board.scalars(metrics.to_json(), progress.nimg, prefix="metrics")
        log(f"metrics at {kimg} kimg: FID {metrics.fid:.2f}")
    if stats:
        stats.write({"event": "verdict", "kimg": kimg, **verdict.to_dict()})
    if board:
        board.scalars({"unstable": int(not verdict.stable)}, progress.nimg, prefix="stability")
    log(f"verdict at {kimg} kimg: {verdict.label}" + "".join(f"; {r}" for r in verdict.reasons))
