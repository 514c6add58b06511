"""Style mixing: which features live in which layers, shown as a grid.

The grid's first row shows the column heroes, its first column the row heroes (the corner is
blank), and cell (r, c) is row hero r with the chosen layers' ws taken from column hero c. With
the coarse layers (0-6, the official default) the column heroes give pose and build and the
row heroes keep their colours; with the fine layers it is the other way round.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from heroforge.errors import UserError
from heroforge.generate.latents import resolve_keys
from heroforge.generate.model import LoadedGenerator
from heroforge.generate.output import make_grid, prepare_outdir, save_png
from heroforge.generate.sample import check_settings, synthesize_batches

DEFAULT_LAYERS = range(7)  # the official style-mixing default, "0-6", cut to the model's ws
MAX_SIDE = 32  # heroes per row or column of the grid


def default_layers(num_ws: int) -> list[int]:
    return [i for i in DEFAULT_LAYERS if i < num_ws]


def check_layers(layers: Sequence[int], num_ws: int) -> None:
    if not layers or not all(0 <= i < num_ws for i in layers):
        raise UserError(f"--layers must pick from 0 to {num_ws - 1} (got {list(layers)})")


def mix_ws(row_ws: torch.Tensor, col_ws: torch.Tensor, layers: Sequence[int]) -> torch.Tensor:
    """[R, C, num_ws, w_dim]: each row's ws with `layers` replaced by each column's."""
    mixed = row_ws.unsqueeze(1).repeat(1, len(col_ws), 1, 1)
    index = list(layers)
    mixed[:, :, index] = col_ws.unsqueeze(0)[:, :, index]
    return mixed


def style_mix_grid(
    model: LoadedGenerator,
    row_ws: torch.Tensor,
    col_ws: torch.Tensor,
    layers: Sequence[int],
    noise_mode: str = "const",
    batch_size: int = 8,
) -> np.ndarray:
    """The mixing grid (uint8 [(R+1) H, (C+1) W, C]) of row and column ws [N, num_ws, w_dim]."""
    check_layers(layers, model.G.num_ws)
    rows, cols = len(row_ws), len(col_ws)
    mixed = mix_ws(row_ws, col_ws, layers).flatten(0, 1)
    ws = torch.cat([col_ws, row_ws, mixed])
    images = list(synthesize_batches(model, ws, noise_mode, batch_size))
    col_imgs, row_imgs, cells = images[:cols], images[cols : cols + rows], images[cols + rows :]
    tiles: list[np.ndarray | None] = [None, *col_imgs]
    for r in range(rows):
        tiles += [row_imgs[r], *cells[r * cols : (r + 1) * cols]]
    return make_grid(tiles, cols + 1)


def write_mix(
    model: LoadedGenerator,
    rows: Sequence[int | Path],
    cols: Sequence[int | Path],
    outdir: str | Path,
    layers: Sequence[int] | None = None,
    truncation_psi: float = 1.0,
    noise_mode: str = "const",
    class_idx: int | None = None,
    batch_size: int = 8,
) -> Path:
    """Write the style-mixing grid of row and column heroes (seeds or latent files).

    layers: the ws each column hero gives (None = 0-6, as the official tool); returns the
    grid's path.
    """
    for name, side in (("--rows", rows), ("--cols", cols)):
        if not 1 <= len(side) <= MAX_SIDE:
            raise UserError(f"{name} takes 1 to {MAX_SIDE} heroes, got {len(side)}")
    layers = default_layers(model.G.num_ws) if layers is None else list(layers)
    check_layers(layers, model.G.num_ws)
    check_settings(truncation_psi, noise_mode, batch_size)
    outdir = prepare_outdir(outdir)
    keys = resolve_keys(model, [*rows, *cols], truncation_psi, class_idx)
    row_ws = torch.stack([k.ws for k in keys[: len(rows)]])
    col_ws = torch.stack([k.ws for k in keys[len(rows) :]])
    grid = style_mix_grid(model, row_ws, col_ws, layers, noise_mode, batch_size)
    text = {
        "rows": ",".join(k.label for k in keys[: len(rows)]),
        "cols": ",".join(k.label for k in keys[len(rows) :]),
        "layers": ",".join(map(str, layers)),
        "truncation_psi": truncation_psi,
        "noise_mode": noise_mode,
        "model": model.source,
        "precision": model.precision,
    }
    return save_png(outdir / f"mix-layers{_span(layers)}.png", grid, text)


def _span(layers: Sequence[int]) -> str:
    """[0, 1, ..., 6] -> "0-6"; anything else -> "0_3_5"."""
    first, last = layers[0], layers[-1]
    if list(layers) == list(range(first, last + 1)):
        return f"{first}-{last}" if last > first else f"{first}"
    return "_".join(map(str, layers))
