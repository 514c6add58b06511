"""The run folder's layout, in one place, without torch: train writes it; generate, the manager
and the web pages read it.

    RUN/config.toml            the resolved config (a resume trains with it)
    RUN/run.json               data path, dataset fingerprint, target kimg, init_from, rollbacks
    RUN/stats.jsonl            one JSON line per tick, plus metric, verdict and rollback events
    RUN/ending.json            how the last training session ended (stopped, finished, crashed);
                               absent while one trains, or when it died without a word (kill -9)
    RUN/stats-discarded.jsonl  the lines a rollback took out of stats.jsonl
    RUN/samples/               the fixed-seed sample grids
    RUN/tensorboard/           TensorBoard scalars (when tensorboard is installed)
    RUN/checkpoints/           ckpt-NNNNNNNNNNNN.safetensors (NNN = images shown), each with its
                               .json sidecar; latest.json and best.json name one of them
    RUN/checkpoints/damaged/   checkpoints a resume found damaged, moved aside (never deleted)

The names are plain constants joined by the caller, not a class of paths: half the callers hold
a checkpoints folder rather than a run folder (`generate --model RUN/checkpoints`, the web
page's "use as best"), and a constant reads the same in both cases.

Everything here reads files that may be mid-write or damaged: a reader returns "nothing"
(None, []) rather than raising, except read_run, which is asked for a run folder by name.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from heroforge.config import Config, config_from_toml
from heroforge.errors import UserError
from heroforge.fileio import atomic_write_text

CONFIG_TOML = "config.toml"
RUN_JSON = "run.json"
STATS = "stats.jsonl"
DISCARDED_STATS = "stats-discarded.jsonl"
SAMPLES = "samples"
TENSORBOARD = "tensorboard"
CHECKPOINTS = "checkpoints"
LATEST = "latest.json"  # marker: the newest checkpoint, {"file": NAME, "sha256": ...}
BEST = "best.json"  # marker: the snapshot generate uses (best stable FID, or the user's choice)
ENDING = "ending.json"  # how the last training session ended (Ending)
DAMAGED = "damaged"  # in CHECKPOINTS: the checkpoints that failed verification, set aside

SHA256_KEY = "safetensors_sha256"  # the sidecar's checksum of its .safetensors file
CHECKPOINT_NAME = re.compile(r"ckpt-(\d{12})\.safetensors")  # the digits: images shown


def checkpoint_name(nimg: int) -> str:
    return f"ckpt-{nimg:012d}.safetensors"


def checkpoint_nimg(name: str) -> int | None:
    """The images shown at the checkpoint file `name`; None if it is not a checkpoint's name."""
    match = CHECKPOINT_NAME.fullmatch(name)
    return int(match.group(1)) if match else None


def list_checkpoints(folder: Path) -> list[Path]:
    """The checkpoint files in a checkpoints folder, newest first (the names sort by images)."""
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if CHECKPOINT_NAME.fullmatch(p.name)]
    return sorted(found, key=lambda p: p.name, reverse=True)


def set_aside_damaged(path: Path) -> Path:
    """Move a checkpoint that failed verification, and its sidecar, into DAMAGED beside it
    (numbered if that name is taken): out of the listing, so that pruning never counts it as
    one of the checkpoints to keep, and no resume tries it again. Returns where it went."""
    aside = path.parent / DAMAGED
    aside.mkdir(exist_ok=True)
    target, number = aside / path.name, 0
    while target.exists() or sidecar_path(target).exists():
        number += 1
        target = aside / f"{path.stem}-{number}{path.suffix}"
    path.replace(target)  # the tensor file first: a lone sidecar is listed as nothing
    if sidecar_path(path).exists():
        sidecar_path(path).replace(sidecar_path(target))
    return target


# fileio.atomic_file writes NAME through a temp file ".NAME.<random>.tmp" beside it, which a
# write killed with -9 (or a power cut) leaves behind.
TEMP_FILE = re.compile(r"\.(?P<target>.+)\.[^.]+\.tmp")


def remove_stale_temps(folder: Path) -> list[str]:
    """Remove the temp files that killed writes of checkpoints, sidecars and markers left in a
    checkpoints folder; their names. For a trainer starting on the run: none of its writes is
    under way yet, and only a trainer writes there (but for the web page's "use as best",
    whose write of best.json takes a moment)."""
    if not folder.is_dir():
        return []
    removed = []
    for path in folder.iterdir():
        match = TEMP_FILE.fullmatch(path.name)
        if match and _written_by_training(match["target"]):
            path.unlink(missing_ok=True)
            removed.append(path.name)
    return sorted(removed)


def _written_by_training(name: str) -> bool:
    tensors = Path(name).with_suffix(".safetensors").name  # a sidecar's checkpoint
    return name in (LATEST, BEST) or checkpoint_nimg(tensors) is not None


def read_marker(folder: Path, marker: str) -> str | None:
    """The file name a marker (LATEST, BEST) in folder names; None when the marker is missing,
    torn, or names anything but a bare file name (it must never lead out of the folder)."""
    try:
        name = json.loads((folder / marker).read_text(encoding="utf-8"))["file"]
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(name, str) or name in ("", ".", "..") or Path(name).name != name:
        return None
    return name


def resume_point(run_dir: Path) -> str:
    """Where `train --resume` goes on from, in words: "goes on from NAME (K kimg)", or
    "starts again (no checkpoint yet)"."""
    latest = read_marker(run_dir / CHECKPOINTS, LATEST)
    nimg = checkpoint_nimg(latest) if latest else None
    if latest is None or nimg is None:
        return "starts again (no checkpoint yet)"
    return f"goes on from {latest} ({nimg / 1000:.3f} kimg)"


def sidecar_path(path: str | Path) -> Path:
    """The JSON sidecar of a .safetensors network file (nets/weights.py writes both)."""
    return Path(path).with_suffix(".json")


def recorded_sha256(path: Path) -> str:
    """The checksum of a network file as its sidecar records it (OSError, ValueError or
    KeyError when the sidecar is missing or damaged)."""
    sha = json.loads(sidecar_path(path).read_text(encoding="utf-8"))[SHA256_KEY]
    if not isinstance(sha, str):
        raise ValueError(f"{SHA256_KEY} must be a string, got {sha!r}")
    return sha


def mark_best(folder: Path, name: str) -> None:
    """Point BEST at the checkpoint `name` in folder, with its checksum: the snapshot
    `heroforge generate` loads from the run. Training calls it for the best stable FID; the
    web page's "use as best" calls it for the user's choice."""
    if checkpoint_nimg(name) is None or not (folder / name).is_file():
        raise UserError(f"there is no checkpoint {name!r} in {folder}")
    try:
        sha = recorded_sha256(folder / name)
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise UserError(f"cannot mark {folder / name} as best: {err}") from None
    write_marker(folder, BEST, name, sha)


def write_marker(folder: Path, marker: str, name: str, sha256: str) -> None:
    """Point a marker at the file `name` with its checksum (atomically: a reader sees the old
    marker or the new one)."""
    atomic_write_text(folder / marker, json.dumps({"file": name, "sha256": sha256}))


def find_run_dir(job_outdir: Path) -> Path | None:
    """The run folder `heroforge train --outdir job_outdir` created (the one with run.json).
    A folder without run.json is a start killed before it wrote anything; it is ignored."""
    if not job_outdir.is_dir():
        return None
    runs = sorted(p for p in job_outdir.iterdir() if (p / RUN_JSON).is_file())
    return runs[-1] if runs else None


def read_run(run_dir: Path) -> tuple[Config, dict[str, Any]]:
    """A run folder's config and run.json; a one-line UserError if it is not a run folder."""
    try:
        cfg = config_from_toml((run_dir / CONFIG_TOML).read_text(encoding="utf-8"), CONFIG_TOML)
        run = read_run_json(run_dir)
    except FileNotFoundError as err:
        raise UserError(
            f"{run_dir} is not a heroforge run folder ({Path(err.filename).name} missing)"
        ) from None
    except (OSError, ValueError) as err:
        raise UserError(f"cannot read the run folder {run_dir}: {err}") from None
    return cfg, run


# config.toml and run.json are rewritten atomically: a crash leaves the old or the new version.
def write_config(run_dir: Path, cfg: Config) -> None:
    atomic_write_text(run_dir / CONFIG_TOML, cfg.to_toml())


def read_run_json(run_dir: Path) -> dict[str, Any]:
    run: dict[str, Any] = json.loads((run_dir / RUN_JSON).read_text(encoding="utf-8"))
    return run


def write_run_json(run_dir: Path, run: dict[str, Any]) -> None:
    atomic_write_text(run_dir / RUN_JSON, json.dumps(run, indent=1))


def append_run_event(run_dir: Path, key: str, event: dict[str, Any]) -> list[dict[str, Any]]:
    """Append event to the list run.json keeps under key; returns the new list."""
    run = read_run_json(run_dir)
    events = [*run.get(key, []), event]
    write_run_json(run_dir, {**run, key: events})
    return events


# -- how the last training session ended -------------------------------------------------------
# A launcher's exit code alone does not say it: torchrun exits 1 after its workers stopped
# cleanly on SIGTERM. So rank 0 records the ending in the run folder, and the supervisor, the
# SLURM script and `status` read it. Whoever starts a session removes the record first (the
# trainer, and the supervisor or SLURM script before they launch it): a session that dies
# without a word then leaves none, never an older one that claims a clean stop.
ENDING_KINDS = ("stopped", "finished", "crashed")


@dataclass(frozen=True)
class Ending:
    how: str  # "stopped" (a signal, after the stop's checkpoint), "finished", "crashed"
    nimg: int  # images shown when it ended
    checkpoint: str | None  # the newest checkpoint then (what a resume starts from)
    at: str  # local time, ISO 8601
    error: str | None = None  # a crash's error, one line

    @property
    def resumable(self) -> bool:
        """Stopped cleanly: starting again goes on, and nothing went wrong."""
        return self.how == "stopped"

    def describe(self) -> str:
        where = f"at {self.nimg / 1000:.3f} kimg"
        if self.how == "crashed":
            return f"crashed {where}: {self.error}"
        return f"{self.how} {where}" + (f" ({self.checkpoint})" if self.checkpoint else "")


def write_ending(
    run_dir: Path, how: str, nimg: int, checkpoint: str | None, error: str | None = None
) -> Ending:
    """Record how the session ended (atomically). error: a crash's error, one line."""
    if how not in ENDING_KINDS:
        raise ValueError(f"an ending is one of {ENDING_KINDS}, not {how!r}")
    line = None if error is None else (error.strip().splitlines() or [""])[0][:300]
    ending = Ending(how, nimg, checkpoint, time.strftime("%Y-%m-%dT%H:%M:%S%z"), line)
    atomic_write_text(run_dir / ENDING, json.dumps(asdict(ending)))
    return ending


def read_ending(run_dir: Path | None) -> Ending | None:
    """The recorded ending; None when there is none (a session under way or one that died
    without a word) or it is torn or malformed."""
    if run_dir is None:
        return None
    try:
        raw = json.loads((run_dir / ENDING).read_text(encoding="utf-8"))
        ending = Ending(**raw)
    except (OSError, UnicodeDecodeError, ValueError, TypeError):
        return None
    kinds_ok = ending.how in ENDING_KINDS and isinstance(ending.nimg, int)
    return ending if kinds_ok else None


def clear_ending(run_dir: Path) -> None:
    """A session starts: the previous ending no longer describes the run."""
    (run_dir / ENDING).unlink(missing_ok=True)
