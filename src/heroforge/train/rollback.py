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
gap-free, duplicate-free kimg sequence.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from heroforge.config import Config
from heroforge.errors import UserError
from heroforge.nets.weights import load_networks, sidecar_path
from heroforge.runtime.dist import barrier
from heroforge.train import checkpoint as ckpt
from heroforge.train.runfiles import append_run_event, read_run_json, write_config
from heroforge.train.stability import Verdict

if TYPE_CHECKING:
    from heroforge.train.loop import Trainer

DISCARDED_STATS = "stats-discarded.jsonl"


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
    trainer: Trainer, verdict: Verdict | None, log: Any
) -> ckpt.Checkpoint | None:
    """The best stable checkpoint, loaded, if the verdict calls for a rollback and one is
    allowed; else None (with a log line saying why not, when the run is unstable)."""
    s, p = trainer.cfg.stability, trainer.progress
    if verdict is None or verdict.stable or not s.rollback:
        return None
    best = p.extra.get("best")
    done = len(read_run_json(trainer.run_dir).get("rollbacks", []))
    if best is None or best["nimg"] >= p.nimg:
        log("unstable, but no stable snapshot with a FID to roll back to")
        return None
    if done >= s.max_rollbacks:
        log(f"unstable, but stability.max_rollbacks = {s.max_rollbacks} are used up")
        return None
    path = trainer.run_dir / "checkpoints" / ckpt.checkpoint_name(best["nimg"])
    try:
        return ckpt.Checkpoint(path, load_networks(path, "cpu"))
    except UserError as err:
        log(f"unstable, but the best snapshot cannot be loaded: {err}")
        return None


def roll_back(
    trainer: Trainer,  # every process calls this with the same checkpoint
    checkpoint: ckpt.Checkpoint,  # the best stable snapshot
    reasons: tuple[str, ...],  # why the run was judged unstable (rank 0's verdict)
    log: Any,
) -> None:
    from_nimg = trainer.progress.nimg
    elapsed = trainer.progress.elapsed_s  # time spent stays spent, discarded or not
    new_cfg, changes = adjusted_config(trainer.cfg)
    barrier()  # every process has read the best checkpoint before rank 0 rewrites it
    trainer.restore(checkpoint, truncate_stats=False)
    trainer.apply_config(new_cfg)
    trainer.progress.elapsed_s = elapsed
    if not trainer.dist.main or trainer.stats is None:
        return
    to_nimg = trainer.progress.nimg
    event = {
        "event": "rollback",
        "kimg": round(to_nimg / 1000, 3),
        "from_kimg": round(from_nimg / 1000, 3),
        "reasons": list(reasons),
        "changes": changes,
    }
    number = len(append_run_event(trainer.run_dir, "rollbacks", event))
    write_config(trainer.run_dir, new_cfg)
    folder = trainer.run_dir / "checkpoints"
    for path in ckpt.list_checkpoints(folder):
        match = ckpt.NAME.match(path.name)
        if match and int(match.group(1)) > to_nimg:
            path.unlink(missing_ok=True)
            sidecar_path(path).unlink(missing_ok=True)
    try:
        trainer.save()
    except OSError as err:  # the best file is still intact and now the newest: a resume works
        log(f"checkpoint after the rollback failed: {err}")
    moved = trainer.stats.move_after(to_nimg, trainer.run_dir / DISCARDED_STATS)
    trainer.stats.write({**event, "number": number, "discarded_lines": moved})
    settings = ", ".join(f"{k} {a:g} -> {b:g}" for k, (a, b) in changes.items())
    log(
        f"rollback {number}: back from {event['from_kimg']} to {event['kimg']} kimg "
        f"({'; '.join(reasons)}); {settings or 'settings unchanged'}"
    )
