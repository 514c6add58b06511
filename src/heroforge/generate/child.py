"""The child of two heroes: a new hero that takes features from both parents.

Every synthesis layer reads its own w, and the layers divide the work: the coarse ones (up to
about 16 px) set pose, silhouette and head shape, the finer ones colours, costume patterns and
texture. So a child can be
- "blend":         every layer's w a mix of the parents' (weight 0 = parent a, 1 = parent b);
- "coarse-from-a": a's coarse layers with b's fine ones (a's build in b's colours);
- "fine-from-a":   b's coarse layers with a's fine ones.
Parents are seeds or latent files, and the child's own ws is saved as a latent file, so a
child can be a parent in turn.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from heroforge.errors import UserError
from heroforge.generate.latents import Key, resolve_keys, save_latent
from heroforge.generate.model import LoadedGenerator
from heroforge.generate.output import make_grid, prepare_outdir, save_png
from heroforge.generate.sample import check_settings, synthesize
from heroforge.nets.generator import Generator

ChildMode = Literal["blend", "coarse-from-a", "fine-from-a"]
MODES: tuple[ChildMode, ...] = ("blend", "coarse-from-a", "fine-from-a")
COARSE_RES = 16  # layers of the blocks up to this resolution count as coarse


@dataclass
class Child:
    ws: torch.Tensor  # [num_ws, w_dim]: the child's latent
    image: np.ndarray  # uint8 [H, W, C]
    panel: np.ndarray  # uint8 [H, 3W, C]: parent a | child | parent b


def coarse_layer_count(gen: Generator, coarse_res: int = COARSE_RES) -> int:
    """How many of the generator's ws (from the first) feed the blocks up to coarse_res."""
    top = gen.img_resolution
    if coarse_res < 4 or coarse_res >= top or 2 ** round(math.log2(coarse_res)) != coarse_res:
        raise UserError(f"--coarse-res {coarse_res}: a power of two from 4 to {top // 2}")
    return sum(block.num_conv for block in gen.synthesis.blocks() if block.resolution <= coarse_res)


def parent_b_share(mode: str, num_ws: int, coarse: int, weight: float) -> torch.Tensor:
    """[num_ws]: how much of parent b each layer's w takes (0 = all a, 1 = all b)."""
    if mode not in MODES:
        raise UserError(f"--mode {mode!r} is not one of {', '.join(MODES)}")
    if not 0 <= weight <= 1:
        raise UserError(f"--weight {weight} is not allowed: 0 (parent a) to 1 (parent b)")
    if mode == "blend":
        return torch.full([num_ws], float(weight))
    coarse_from_a = torch.arange(num_ws) >= coarse  # 0 on the coarse layers, 1 on the fine
    return (coarse_from_a if mode == "coarse-from-a" else ~coarse_from_a).float()


def child_ws(
    a: torch.Tensor,
    b: torch.Tensor,
    mode: str = "blend",
    weight: float = 0.5,
    coarse: int = 5,
) -> torch.Tensor:
    """The child's ws [num_ws, w_dim] from the parents' (see parent_b_share)."""
    share = parent_b_share(mode, a.shape[0], coarse, weight).to(a)
    return torch.lerp(a, b, share.unsqueeze(1))


def make_child(
    model: LoadedGenerator,
    a: Key,
    b: Key,
    mode: str = "blend",
    weight: float = 0.5,
    coarse_res: int = COARSE_RES,
    noise_mode: str = "const",
) -> Child:
    """The child of heroes a and b, drawn, with the panel a | child | b."""
    coarse = 0 if mode == "blend" else coarse_layer_count(model.G, coarse_res)
    ws = child_ws(a.ws, b.ws, mode, weight, coarse)
    # Noise seeded the same for all three, so that with "random" too only the ws differ.
    trio = synthesize(model, torch.stack([a.ws, ws, b.ws]), noise_mode, [0, 0, 0])
    return Child(ws=ws, image=trio[1], panel=make_grid(list(trio), cols=3))


def check_child(
    num_parents: int, weight: float | None, mode: str, coarse_res: int | None = None
) -> float:
    """Refuse impossible arguments before any work; returns the weight to use."""
    if num_parents != 2:
        raise UserError(f"--parents takes exactly two heroes, like 12,40 (got {num_parents})")
    if weight is not None and mode != "blend":
        raise UserError(f"--weight is for --mode blend; {mode} takes whole layers from each")
    if coarse_res is not None and mode == "blend":
        raise UserError("--coarse-res is for the coarse-from-a and fine-from-a modes, not blend")
    weight = 0.5 if weight is None else weight
    parent_b_share(mode, 1, 0, weight)  # checks the mode and the weight's range
    return weight


def write_child(
    model: LoadedGenerator,
    parents: list[int | Path],
    outdir: str | Path,
    weight: float | None = None,
    mode: str = "blend",
    coarse_res: int | None = None,
    truncation_psi: float = 1.0,
    noise_mode: str = "const",
    class_idx: int | None = None,
) -> dict[str, Path]:
    """Write the child of two parents (seeds or latent files) into outdir.

    weight: parent b's share in "blend" mode (None = 0.5); the mixing modes take whole layers
    and refuse it. coarse_res: the resolution up to which layers count as coarse (mixing
    modes only; None = COARSE_RES).
    Writes NAME.png, NAME-panel.png (a | child | b) and NAME.latent.safetensors (the child as a
    parent for later commands); returns them as {"child", "panel", "latent"}.
    """
    weight = check_child(len(parents), weight, mode, coarse_res)
    coarse_res = COARSE_RES if coarse_res is None else coarse_res
    check_settings(truncation_psi, noise_mode, 1)
    if mode != "blend":
        coarse_layer_count(model.G, coarse_res)
    outdir = prepare_outdir(outdir)
    a, b = resolve_keys(model, parents, truncation_psi, class_idx)
    child = make_child(model, a, b, mode, weight, coarse_res, noise_mode)
    how = f"blend{round(weight * 100)}" if mode == "blend" else f"{mode}{coarse_res}"
    name = f"child-{a.label}-{b.label}-{how}"
    text = {
        "parents": f"{a.label},{b.label}",
        "mode": mode,
        "weight": weight if mode == "blend" else "none",
        "coarse_res": "none" if mode == "blend" else coarse_res,
        "truncation_psi": truncation_psi,
        "noise_mode": noise_mode,
        "model": model.source,
        "precision": model.precision,
    }
    return {
        "child": save_png(outdir / f"{name}.png", child.image, text),
        "panel": save_png(outdir / f"{name}-panel.png", child.panel, text),
        "latent": save_latent(outdir / f"{name}.latent.safetensors", child.ws),
    }
