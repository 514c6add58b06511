"""Going back to the best stable snapshot when a verdict says the run became unstable.

The usual cure for a StyleGAN2 run that D has won is to retrain from a healthy snapshot with a
stronger R1 penalty and/or smaller learning rates; the reference users did this by hand. A
rollback restores the full state of the best stable checkpoint, multiplies train.r1_gamma,
g_lr and d_lr by the [stability] factors, and trains on to the same target.

What stays consistent on disk, in this order (a crash at any point leaves a resumable run):
run.json records the rollback and config.toml the new settings (a resume trains with them);
the abandoned checkpoints after the best one are deleted; the restored state is saved again
under the best one's name (same weights, new settings, latest.json pointing at it); then the
abandoned lines of stats.jsonl move to stats-discarded.jsonl, so stats.jsonl stays a
gap-free, duplicate-free kimg sequence. The Trainer drives it (restore, save); the functions
here take the pieces they need.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from heroforge import rundir
from heroforge.config import Config, StabilityConfig
from heroforge.console import Log
from heroforge.errors import UserError
from heroforge.nets.loading import Checkpoint
from heroforge.nets.weights import load_networks
from heroforge.rundir import sidecar_path
from heroforge.train.stability import Verdict
from heroforge.train.state import Progress
from heroforge.train.stats import StatsLog


def adjusted_config(cfg: Config) -> tuple[Config, dict[str, list[float]]]:
    """The config after one rollback, and what changed: {"train.r1_gamma": [old, new], ...}."""
    t, s = cfg.train, cfg.stability
    changes = {
        "r1_gamma": [t.r1_gamma, t.r1_gamma * s.gamma_factor],
        "g_lr": [t.g_lr, t.g_lr * s.lr_factor],
        "d_lr": [t.d_lr, t.d_lr * s.lr_factor],
    }
    changes = {k: v for k, v in changes.items() if v[0] != v[1]}
    new = cfg.replace({"train": {k: v[1] for k, v in changes.items()}})
    return new, {f"train.{k}": v for k, v in changes.items()}


def best_to_return_to(
    run_dir: Path,
    progress: Progress,
    cfg: StabilityConfig,
    verdict: Verdict | None,
    log: Log,
) -> Checkpoint | None:
    """The best stable checkpoint, loaded, if the verdict calls for a rollback and one is
    allowed; else None (with a log line saying why not, when the run is unstable)."""
    if verdict is None or verdict.stable or not cfg.rollback:
        return None
    best = progress.best
    done = len(rundir.read_run_json(run_dir).get("rollbacks", []))
    if best is None or best.nimg >= progress.nimg:
        log("unstable, but no stable snapshot with a FID to roll back to")
        return None
    if done >= cfg.max_rollbacks:
        log(f"unstable, but stability.max_rollbacks = {cfg.max_rollbacks} are used up")
        return None
    path = run_dir / rundir.CHECKPOINTS / rundir.checkpoint_name(best.nimg)
    try:
        return Checkpoint(path, load_networks(path, "cpu"))
    except UserError as err:
        log(f"unstable, but the best snapshot cannot be loaded: {err}")
        return None


def record(
    run_dir: Path,
    new_cfg: Config,  # the settings the run trains on with
    changes: dict[str, list[float]],  # what adjusted_config changed
    from_nimg: int,  # where the run was judged unstable
    to_nimg: int,  # the best stable snapshot it went back to
    reasons: tuple[str, ...],  # why it was judged unstable
) -> dict[str, Any]:
    """run.json's rollback event and config.toml's new settings, then the abandoned
    checkpoints gone; returns the event with its number."""
    event = {
        "event": "rollback",
        "kimg": round(to_nimg / 1000, 3),
        "from_kimg": round(from_nimg / 1000, 3),
        "reasons": list(reasons),
        "changes": changes,
    }
    number = len(rundir.append_run_event(run_dir, "rollbacks", event))
    rundir.write_config(run_dir, new_cfg)
    for path in rundir.list_checkpoints(run_dir / rundir.CHECKPOINTS):
        nimg = rundir.checkpoint_nimg(path.name)
        if nimg is not None and nimg > to_nimg:
            path.unlink(missing_ok=True)
            sidecar_path(path).unlink(missing_ok=True)
    return {**event, "number": number}


def discard_stats(
    stats: StatsLog,
    run_dir: Path,
    to_nimg: int,  # the snapshot the run went back to: later lines are abandoned
    event: dict[str, Any],  # what record() returned
    log: Log,
) -> None:
    """Move the abandoned lines of stats.jsonl aside, then log the rollback there and here."""
    moved = stats.move_after(to_nimg, run_dir / rundir.DISCARDED_STATS)
    stats.write({**event, "discarded_lines": moved})
    settings = ", ".join(f"{k} {a:g} -> {b:g}" for k, (a, b) in event["changes"].items())
    log(
        f"rollback {event['number']}: back from {event['from_kimg']} to {event['kimg']} kimg "
        f"({'; '.join(event['reasons'])}); {settings or 'settings unchanged'}"
    )
