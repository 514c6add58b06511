"""Turn what the user passes as --model into a generator ready for inference.

--model may name a training run folder (its best snapshot if the metrics have marked one,
else its newest checkpoint that verifies), a checkpoints/ folder, a folder holding a single
network file (what importing an official model writes), or a network file itself; finding and
loading the file is nets/loading.py's. Here: the device, and the generator picked from what
loaded (a file with a discriminator only is one more one-line UserError), and the precision
it draws in.

--precision sets the type of the generator's top num_fp16_res blocks only (nets/layers.py:
ReducedPrecision); the low-resolution blocks, the mapping network and the demodulation stay
fp32, as in training and in the official networks (sample.py says why a blanket autocast is
wrong). "auto" is the official behaviour: fp16 on CUDA, as the official generate.py draws,
and fp32 on the CPU. bf16 on the CPU (AVX-512 BF16 / AMX) is faster, but its pictures are up
to 9 grey levels from the fp32 ones (mean 0.3-0.6 over seeds 0-63: README, "Precision"),
which breaks the official seed -> picture parity (at most 1 level) that "auto" keeps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from heroforge.errors import UserError
from heroforge.nets.generator import Generator
from heroforge.nets.layers import ReducedPrecision, set_half_dtype
from heroforge.nets.loading import load_model
from heroforge.nets.weights import LoadedNetworks

PREFERRED = ("G_ema", "G")  # the EMA generator makes the better pictures; plain G is a fallback
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
NAMES = {dtype: name for name, dtype in DTYPES.items()}


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

    @property
    def precision(self) -> str:
        """What the top blocks compute in: "fp32", "bf16" or "fp16" (for the log and PNGs)."""
        for module in self.G.modules():
            if isinstance(module, ReducedPrecision) and module.use_fp16:
                probe = torch.empty(0, device=self.device)
                return NAMES[module.compute_dtype(probe)]
        return "fp32"  # num_fp16_res = 0: every block runs in fp32


def check_precision(precision: str, device: torch.device) -> str:
    """The precision that --precision means on device: "auto" resolved; a one-line UserError
    for an unknown name, or fp16 on a CPU (fp16 is the GPUs' reduced type; the CPU's is bf16)."""
    if precision not in PRECISIONS:
        raise UserError(f"--precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    if precision == "auto":
        return "fp16" if device.type == "cuda" else "fp32"
    if precision == "fp16" and device.type != "cuda":
        raise UserError("--precision fp16 needs a CUDA GPU; on the CPU use bf16 (faster) or fp32")
    return precision


def set_precision(model: LoadedGenerator, precision: str) -> None:
    """Draw with model's top blocks in `precision` (auto, fp32, bf16, fp16: check_precision).
    A network without reduced-precision blocks (num_fp16_res = 0) keeps fp32, with a note."""
    name = check_precision(precision, model.device)
    set_half_dtype(model.G, DTYPES[name])
    if model.precision != name:
        model.notes.append(
            f"--precision {precision}: this network runs every block in fp32 (num_fp16_res = 0)"
        )


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


def load_generator(
    model: str | Path, device: str | torch.device | None = None, precision: str = "auto"
) -> LoadedGenerator:
    """The generator that `model` (run folder, checkpoints folder or network file) holds.

    device: "cpu", "cuda", ...; None = CUDA when available, else the CPU.
    precision: "auto" (fp16 on CUDA, fp32 on the CPU), "fp32", "bf16" or "fp16" (CUDA only).
    """
    parsed = parse_device(device)
    check_precision(precision, parsed)  # before the (slow) loading
    loaded, source, notes = load_model(model, parsed)
    generator = _pick_generator(loaded, source, notes)
    set_precision(generator, precision)
    return generator


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
