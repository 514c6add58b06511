"""Turn what the user passes as --model into a generator ready for inference.

--model may name a training run folder (its best snapshot if the metrics have marked one,
else its newest checkpoint that verifies), a checkpoints/ folder, a folder holding a single
network file (what importing an official model writes), or a network file itself. Every way
of failing (missing, corrupt, half-written, a discriminator only, a pickle, a text file) ends
in a one-line UserError: the files are the user's and may be anything.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch

from heroforge.errors import UserError
from heroforge.nets.generator import Generator
from heroforge.nets.weights import LoadedNetworks, load_networks, sidecar_path

PREFERRED = ("G_ema", "G")  # the EMA generator makes the better pictures; plain G is a fallback
BEST_MARKER = "best.json"  # {"file": "ckpt-....safetensors"}, written by the metrics


@dataclass
class LoadedGenerator:
    G: Generator  # in eval mode, without gradients, on its device
    source: Path  # the network file it came from
    network: str  # its name in that file: "G_ema" or "G"
    c_dim: int  # label size; 0 = unconditional
    notes: list[str] = field(default_factory=list)  # what the loader skipped, for the log

    @property
    def device(self) -> torch.device:
        return next(self.G.parameters()).device


def parse_device(device: str | torch.device | None) -> torch.device:
    """ "cpu", "cuda", "cuda:1", ...; None = CUDA when available, else the CPU."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError):
        raise UserError(f"--device {device!r} is not a device: cpu, cuda, cuda:1, ...") from None
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device {device}: this machine has no usable CUDA GPU")
    return parsed


def one_line(err: BaseException) -> str:
    """The first line of an exception's message: errors reach the user as a single line."""
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def load_generator(model: str | Path, device: str | torch.device | None = None) -> LoadedGenerator:
    """The generator that `model` (run folder, checkpoints folder or network file) holds.

    device: "cpu", "cuda", ...; None = CUDA when available, else the CPU.
    """
    loaded, source, notes = load_model(model, parse_device(device))
    return _pick_generator(loaded, source, notes)


def load_model(
    model: str | Path, device: str | torch.device = "cpu"
) -> tuple[LoadedNetworks, Path, list[str]]:
    """Every network `model` holds (run folder: best snapshot, else newest good checkpoint;
    checkpoints folder; folder with one network file; network file), the file they came from,
    and notes on what was skipped. Shared by generation and by `train --init-from`."""
    path = Path(model).expanduser()
    device = torch.device(device)
    if not path.exists():
        raise UserError(f"no model at {path}: give a run folder or a .safetensors network file")
    if path.suffix == ".json" and path.with_suffix(".safetensors").is_file():
        path = path.with_suffix(".safetensors")  # the sidecar was named instead of the tensors
    notes: list[str] = []
    if path.is_dir():
        loaded, source = _load_folder(path, device, notes)
    else:
        loaded, source = _load_file(path, device), path
    return loaded, source, notes


def wrap_generator(gen: Generator, source: str | Path = "<memory>") -> LoadedGenerator:
    """A generator built or trained in this process, in the form the generate functions take."""
    gen.eval().requires_grad_(False)
    return LoadedGenerator(G=gen, source=Path(source), network="G", c_dim=gen.c_dim)


def _load_file(path: Path, device: torch.device) -> LoadedNetworks:
    if path.suffix == ".pkl":
        raise UserError(
            f"{path} is an official pickle: convert it first with `heroforge import-official "
            f"{path} --out DIR` (pickles can run code, so they are never loaded directly)"
        )
    if path.suffix != ".safetensors":
        raise UserError(f"{path} is not a model: give a run folder or a .safetensors network file")
    try:
        return load_networks(path, device)
    except UserError:
        raise
    except (ValueError, TypeError, KeyError, AttributeError, RuntimeError) as err:
        # A sidecar that parses as JSON but holds nonsense fails inside the config or the
        # network constructors; for the user it is one more damaged file.
        raise UserError(f"cannot load {path}: {one_line(err)}") from None


def _load_folder(
    folder: Path, device: torch.device, notes: list[str]
) -> tuple[LoadedNetworks, Path]:
    from heroforge.train.checkpoint import list_checkpoints, load_latest

    run = (folder / "checkpoints").is_dir()
    checkpoints = folder / "checkpoints" if run else folder
    best = _load_best(checkpoints, device, notes)
    if best is not None:
        return best
    if list_checkpoints(checkpoints):
        checkpoint, problems = load_latest(checkpoints, device)
        notes.extend(f"skipped a damaged checkpoint: {p}" for p in problems)
        return checkpoint.loaded, checkpoint.path
    if run:
        raise UserError(f"the run {folder} has no checkpoint yet")
    networks = [p for p in folder.glob("*.safetensors") if sidecar_path(p).is_file()]
    if len(networks) == 1:
        return _load_file(networks[0], device), networks[0]
    if networks:
        names = ", ".join(sorted(p.name for p in networks)[:4])
        raise UserError(f"{folder} holds several network files ({names}): name one of them")
    raise UserError(f"{folder} holds no model: no checkpoints/ and no .safetensors network file")


def _load_best(
    checkpoints: Path, device: torch.device, notes: list[str]
) -> tuple[LoadedNetworks, Path] | None:
    """The snapshot that best.json names, or None (with a note) to fall back to the latest."""
    marker = checkpoints / BEST_MARKER
    if not marker.is_file():
        return None
    try:
        name = json.loads(marker.read_text(encoding="utf-8"))["file"]
        if not isinstance(name, str) or Path(name).name != name:
            raise ValueError(f"'file' must be a file name, got {name!r}")
        path = checkpoints / name
        return _load_file(path, device), path
    except (OSError, ValueError, KeyError, TypeError, UserError) as err:
        notes.append(f"ignored {marker} ({one_line(err)}); using the latest checkpoint")
        return None


def _pick_generator(loaded: LoadedNetworks, source: Path, notes: list[str]) -> LoadedGenerator:
    for name in PREFERRED:
        net = loaded.networks.get(name)
        if isinstance(net, Generator):
            net.eval().requires_grad_(False)
            return LoadedGenerator(
                G=net, source=source, network=name, c_dim=loaded.c_dim, notes=notes
            )
    held = ", ".join(sorted(loaded.networks)) or "nothing"
    raise UserError(f"{source} holds no generator (G_ema or G), only: {held}")
