"""Load the networks a run folder, a checkpoints folder or a network file holds.

Below both train and generate: generation and `train --init-from` load a model the same way,
and a resume loads the newest checkpoint that verifies. A run folder gives its best snapshot
if one is marked (best.json), else its newest checkpoint that verifies; a checkpoints folder
the same; a folder holding a single network file (what importing an official model writes)
that file; an official StyleGAN2-ADA pickle goes through the restricted reader of
nets/official.py (nothing in it runs). Every way of failing (missing, corrupt, half-written, a
pickle that is not an official network, a text file) ends in a one-line UserError: the files
are the user's and may be anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from heroforge import rundir
from heroforge.errors import UserError
from heroforge.nets.official import read_official
from heroforge.nets.weights import LoadedNetworks, load_networks
from heroforge.rundir import sidecar_path

GIVE = "give a run folder, a .safetensors network file or an official .pkl"


@dataclass
class Checkpoint:
    path: Path
    loaded: LoadedNetworks

    @property
    def meta(self) -> dict[str, Any]:
        return self.loaded.metadata


def one_line(err: BaseException) -> str:
    """The first line of an exception's message: errors reach the user as a single line."""
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def load_latest(
    folder: Path, device: str | torch.device = "cpu", set_aside: bool = False
) -> tuple[Checkpoint, list[str]]:
    """The newest checkpoint in a checkpoints folder that verifies, the one latest.json names
    first, and the problems met on the way (for the log). set_aside (the trainer that resumes
    the run) moves each checkpoint that fails into checkpoints/damaged/: kept for a look, but
    no longer counted by pruning or tried again."""
    candidates = rundir.list_checkpoints(folder)
    marked = rundir.read_marker(folder, rundir.LATEST)
    candidates.sort(key=lambda p: p.name != marked)  # stable: newest first after the marked one
    problems: list[str] = []
    for path in candidates:
        try:
            return Checkpoint(path, load_networks(path, device)), problems
        except UserError as err:
            problems.append(f"{path.name}: {err}" + (_set_aside(path) if set_aside else ""))
    detail = "; ".join(problems) if problems else "none found"
    raise UserError(f"no usable checkpoint in {folder} ({detail})")


def _set_aside(path: Path) -> str:
    """Move a damaged checkpoint into damaged/; what became of it, for its problem line."""
    try:
        moved = rundir.set_aside_damaged(path)
    except OSError as err:
        return f" (left in place: moving it to {rundir.DAMAGED}/ failed: {err})"
    return f" (moved to {rundir.DAMAGED}/{moved.name})"


def unsigned_note(path: Path) -> str:
    """What to say, once, when a model's sidecar predates the checksum that covers it."""
    return (
        f"{path.name} was written before sidecars were checksummed: its settings and counters "
        "are used unverified (its tensors and their shapes are verified)"
    )


def load_model(
    model: str | Path, device: str | torch.device = "cpu"
) -> tuple[LoadedNetworks, Path, list[str]]:
    """Every network `model` holds (run folder: best snapshot, else newest good checkpoint;
    checkpoints folder; folder with one network file; network file; official pickle), the file
    they came from,
    and notes on what was skipped. Shared by generation and by `train --init-from`."""
    path = Path(model).expanduser()
    device = torch.device(device)
    if not path.exists():
        raise UserError(f"no model at {path}: {GIVE}")
    if path.suffix == ".json" and path.with_suffix(".safetensors").is_file():
        path = path.with_suffix(".safetensors")  # the sidecar was named instead of the tensors
    notes: list[str] = []
    if path.is_dir():
        loaded, source = _load_folder(path, device, notes)
    else:
        loaded, source = load_file(path, device), path
    if not loaded.sidecar_signed:
        notes.append(unsigned_note(source))
    return loaded, source, notes


def load_file(path: Path, device: str | torch.device = "cpu") -> LoadedNetworks:
    """One network file, every failure a one-line UserError."""
    if path.suffix == ".pkl":
        return load_official(path, device)
    if path.suffix != ".safetensors":
        raise UserError(f"{path} is not a model: {GIVE}")
    try:
        return load_networks(path, device)
    except UserError:
        raise
    except (ValueError, TypeError, KeyError, AttributeError, RuntimeError) as err:
        # A sidecar that parses as JSON but holds nonsense fails inside the config or the
        # network constructors; for the user it is one more damaged file.
        raise UserError(f"cannot load {path}: {one_line(err)}") from None


def load_official(path: Path, device: str | torch.device = "cpu") -> LoadedNetworks:
    """An official StyleGAN2-ADA pickle, read as `import-official` reads it: nothing in the file
    runs, and the networks are those the import would have saved."""
    loaded = read_official(path)
    loaded.networks = {name: net.to(device) for name, net in loaded.networks.items()}
    return loaded


def _load_folder(
    folder: Path, device: torch.device, notes: list[str]
) -> tuple[LoadedNetworks, Path]:
    run = (folder / rundir.CHECKPOINTS).is_dir()
    checkpoints = folder / rundir.CHECKPOINTS if run else folder
    best = _load_best(checkpoints, device, notes)
    if best is not None:
        return best
    if rundir.list_checkpoints(checkpoints):
        checkpoint, problems = load_latest(checkpoints, device)
        notes.extend(f"skipped a damaged checkpoint: {p}" for p in problems)
        return checkpoint.loaded, checkpoint.path
    if run:
        raise UserError(f"the run {folder} has no checkpoint yet")
    networks = [p for p in folder.glob("*.safetensors") if sidecar_path(p).is_file()]
    if len(networks) == 1:
        return load_file(networks[0], device), networks[0]
    if networks:
        names = ", ".join(sorted(p.name for p in networks)[:4])
        raise UserError(f"{folder} holds several network files ({names}): name one of them")
    raise UserError(f"{folder} holds no model: no checkpoints/ and no .safetensors network file")


def _load_best(
    checkpoints: Path, device: torch.device, notes: list[str]
) -> tuple[LoadedNetworks, Path] | None:
    """The snapshot that best.json names, or None (with a note) to fall back to the latest."""
    marker = checkpoints / rundir.BEST
    if not marker.is_file():
        return None
    name = rundir.read_marker(checkpoints, rundir.BEST)
    if name is None:
        notes.append(f"ignored {marker} (it names no file); using the latest checkpoint")
        return None
    try:
        return load_file(checkpoints / name, device), checkpoints / name
    except UserError as err:
        notes.append(f"ignored {marker} ({one_line(err)}); using the latest checkpoint")
        return None
