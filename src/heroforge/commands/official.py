"""The official StyleGAN2-ADA train.py flag names, turned into heroforge settings.

`heroforge train` accepts them beside its own options so that a command line written for the
official script works after changing `python train.py` to `heroforge train`. Each becomes one
`--set SECTION.KEY=VALUE`, so a multi-process launch hands its workers plain settings and the
run's config.toml records what they meant. The official `--resume PKL` (start from a trained
model) is heroforge's --init-from; heroforge's --resume continues one of its own run folders.
"""

from __future__ import annotations

from pathlib import Path

from heroforge.errors import UserError

# click's BOOL words, which the official script's --mirror, --cond and --fp32 take
_TRUE = ("1", "true", "t", "yes", "y", "on")
_FALSE = ("0", "false", "f", "no", "n", "off")

AUG_MODES = {"ada": "ada", "fixed": "fixed", "noaug": "none"}
OFFICIAL_PANEL = "Official train.py names"


def official_bool(flag: str, text: str) -> bool:
    word = text.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise UserError(f"{flag} takes a yes/no value as in the official script (1 or 0), got {text!r}")


def train_overrides(
    *,
    gamma: float | None = None,
    mirror: str | None = None,
    cond: str | None = None,
    subset: int | None = None,
    batch: int | None = None,
    aug: str | None = None,
    p: float | None = None,
    target: float | None = None,
    augpipe: str | None = None,
    freezed: int | None = None,
    fp32: str | None = None,
    workers: int | None = None,
) -> list[str]:
    """The --set assignments that the official flags given (not None) stand for."""
    sets: list[str] = []
    if gamma is not None:
        sets.append(f"train.r1_gamma={gamma!r}")
    if mirror is not None:
        sets.append(f"data.mirror={str(official_bool('--mirror', mirror)).lower()}")
    if cond is not None:
        sets.append(f"data.use_labels={str(official_bool('--cond', cond)).lower()}")
    if subset is not None:
        sets.append(f"data.max_images={subset}")
    if batch is not None:
        sets.append(f"train.batch={batch}")
    if aug is not None:
        if aug not in AUG_MODES:
            raise UserError(f"--aug {aug!r}: use one of {', '.join(AUG_MODES)}")
        sets.append(f"augment.mode={AUG_MODES[aug]}")
    if p is not None:
        sets.append(f"augment.p={p!r}")
    if target is not None:
        sets.append(f"augment.target={target!r}")
    if augpipe is not None:
        sets.append(f"augment.pipe={augpipe}")
    if freezed is not None:
        sets.append(f"train.freeze_d={freezed}")
    if fp32 is not None and official_bool("--fp32", fp32):
        sets.append("train.precision=fp32")
    if workers is not None:
        sets.append(f"data.workers={workers}")
    return sets


def snap_overrides(snap: int, tick_kimg: float) -> list[str]:
    """--snap N: a snapshot (checkpoint) and a metrics measurement every N ticks."""
    if snap < 1:
        raise UserError(f"--snap must be a number of ticks >= 1, got {snap}")
    kimg = snap * tick_kimg
    return [f"train.checkpoint_kimg={kimg!r}", f"metrics.every_kimg={kimg!r}"]


def check_resume(resume: Path) -> None:
    """Refuse an official pickle given to --resume, saying which option means that here."""
    if resume.suffix.lower() == ".pkl":
        raise UserError(
            f"--resume continues a heroforge run folder; to start from the trained model "
            f"{resume} (the official --resume PKL) use --init-from {resume} with --data"
        )
