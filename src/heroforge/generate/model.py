"""Turn what the user passes as --model into a generator ready for inference.

--model may name a training run folder (its best snapshot if the metrics have marked one,
else its newest checkpoint that verifies), a checkpoints/ folder, a folder holding a single
network file (what importing an official model writes), or a network file itself; finding and
loading the file is nets/loading.py's. Here: the device, and the generator picked from what
loaded (a file with a discriminator only is one more one-line UserError).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from heroforge.errors import UserError
from heroforge.nets.generator import Generator
from heroforge.nets.loading import load_model
from heroforge.nets.weights import LoadedNetworks

PREFERRED = ("G_ema", "G")  # the EMA generator makes the better pictures; plain G is a fallback


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


def load_generator(model: str | Path, device: str | torch.device | None = None) -> LoadedGenerator:
    """The generator that `model` (run folder, checkpoints folder or network file) holds.

    device: "cpu", "cuda", ...; None = CUDA when available, else the CPU.
    """
    loaded, source, notes = load_model(model, parse_device(device))
    return _pick_generator(loaded, source, notes)


def wrap_generator(gen: Generator, source: str | Path = "<memory>") -> LoadedGenerator:
    """A generator built or trained in this process, in the form the generate functions take."""
    gen.eval().requires_grad_(False)
    return LoadedGenerator(G=gen, source=Path(source), network="G", c_dim=gen.c_dim)


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
