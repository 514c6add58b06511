"""Full-state training checkpoints that survive kill -9, full disks and torn writes.

A checkpoint is a network file (heroforge.nets.weights: safetensors + JSON sidecar, loadable by
every heroforge command) that also carries the optimisers' tensors and, in its metadata, every
counter the loop needs. Writes are atomic (temp file, fsync, rename); `latest.json` then names
the new file with its checksum. Loading verifies the checksum and falls back to the newest
older checkpoint that verifies, so a damaged newest file costs one checkpoint interval, not the
run. The last `keep` checkpoints are kept, plus any marked as best.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from heroforge.config import Config
from heroforge.errors import UserError
from heroforge.fileio import atomic_write_text
from heroforge.nets.weights import LoadedNetworks, load_networks, save_networks, sidecar_path

NAME = re.compile(r"^ckpt-(\d{12})\.safetensors$")


def checkpoint_name(nimg: int) -> str:
    return f"ckpt-{nimg:012d}.safetensors"


def flatten_optimizer(prefix: str, opt: torch.optim.Optimizer) -> tuple[dict, dict]:
    """Optimizer state as (tensors by name, JSON-able rest)."""
    sd = opt.state_dict()
    tensors, plain = {}, {"param_groups": sd["param_groups"], "state": {}}
    for idx, entry in sd["state"].items():
        plain["state"][str(idx)] = {}
        for key, value in entry.items():
            if torch.is_tensor(value):
                tensors[f"{prefix}.{idx}.{key}"] = value
            else:
                plain["state"][str(idx)][key] = value
    return tensors, plain


def restore_optimizer(prefix: str, opt: torch.optim.Optimizer, tensors: dict, plain: dict) -> None:
    state: dict[int, dict[str, Any]] = {}
    for idx, entry in plain["state"].items():
        state[int(idx)] = dict(entry)
    for name, value in tensors.items():
        if name.startswith(prefix + "."):
            idx, key = name[len(prefix) + 1 :].split(".", 1)
            state.setdefault(int(idx), {})[key] = value
    groups = [
        {**g, "betas": tuple(g["betas"])} if "betas" in g else g for g in plain["param_groups"]
    ]
    opt.load_state_dict({"state": state, "param_groups": groups})


@dataclass
class Checkpoint:
    path: Path
    loaded: LoadedNetworks

    @property
    def meta(self) -> dict[str, Any]:
        return self.loaded.metadata


def save_checkpoint(
    folder: Path,
    nimg: int,
    networks: dict[str, torch.nn.Module],
    cfg: Config,
    c_dim: int,
    extra_tensors: dict[str, torch.Tensor],
    meta: dict[str, Any],
    keep: int,
    protected: set[str] = frozenset(),  # type: ignore[assignment]
    best_nimg: int | None = None,
) -> Path:
    """Write one checkpoint, point latest.json (and best.json, when best_nimg is this one) at
    it, and prune old ones beyond `keep` except the protected ones."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / checkpoint_name(nimg)
    save_networks(path, networks, cfg, c_dim, {**meta, "nimg": nimg}, extra_tensors)
    sha = json.loads(sidecar_path(path).read_text(encoding="utf-8"))["safetensors_sha256"]
    atomic_write_text(folder / "latest.json", json.dumps({"file": path.name, "sha256": sha}))
    if best_nimg == nimg:
        mark_best(folder, path.name)
    protected = {*protected, *_named_by(folder / "best.json")}  # incl. a user's "use as best"
    for old in list_checkpoints(folder)[keep:]:
        if old.name not in protected:
            old.unlink(missing_ok=True)
            sidecar_path(old).unlink(missing_ok=True)
    return path


def _named_by(marker: Path) -> list[str]:
    """The checkpoint file a marker (latest.json, best.json) names; none if it is unreadable."""
    try:
        return [str(json.loads(marker.read_text(encoding="utf-8"))["file"])]
    except (OSError, ValueError, KeyError, TypeError):
        return []


def mark_best(folder: Path, name: str) -> None:
    """Point best.json at the checkpoint `name` in folder, with its checksum: the snapshot
    `heroforge generate` loads from the run. Training calls it for the best stable FID; the
    web page's "use as best" calls it for the user's choice."""
    if not NAME.match(name) or not (folder / name).is_file():
        raise UserError(f"there is no checkpoint {name!r} in {folder}")
    try:
        sidecar = json.loads(sidecar_path(folder / name).read_text(encoding="utf-8"))
        sha = sidecar["safetensors_sha256"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise UserError(f"cannot mark {folder / name} as best: {err}") from None
    atomic_write_text(folder / "best.json", json.dumps({"file": name, "sha256": sha}))


def list_checkpoints(folder: Path) -> list[Path]:
    """Checkpoint files, newest first."""
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if NAME.match(p.name)]
    return sorted(found, key=lambda p: p.name, reverse=True)


def load_latest(folder: Path, device: str | torch.device = "cpu") -> tuple[Checkpoint, list[str]]:
    """The newest checkpoint that verifies, and the problems met on the way (for the log)."""
    candidates = list_checkpoints(folder)
    marker = _named_by(folder / "latest.json")
    candidates.sort(key=lambda p: p.name not in marker)  # the marked one first
    problems = []
    for path in candidates:
        try:
            return Checkpoint(path, load_networks(path, device)), problems
        except UserError as err:
            problems.append(f"{path.name}: {err}")
    detail = "; ".join(problems) if problems else "none found"
    raise UserError(f"no usable checkpoint in {folder} ({detail})")
