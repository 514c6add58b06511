"""Seeds -> heroes: batched synthesis and `heroforge generate`'s PNGs.

Pixels are converted as the official generate.py converts them (x * 127.5 + 128, clamped,
truncated to uint8), so together with its seed -> z rule an imported official model draws the
same hero for the same seed. Precision is the network's own: on CUDA its top resolutions run
in fp16 (with the conv clamp they were trained with), the rest in fp32, as in training. A
blanket fp16 autocast would also push the low-resolution blocks and the demodulation into
fp16, where large styles overflow to all-zero channels with no error to catch. The CPU runs
fp32, and channels-last is chosen by the networks themselves.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import cast

import numpy as np
import torch
from PIL import Image

from heroforge.errors import UserError
from heroforge.generate.latents import check_psi, class_labels, seed_ws
from heroforge.generate.model import LoadedGenerator
from heroforge.generate.output import make_grid, prepare_outdir, save_png, to_pil
from heroforge.nets.synthesis import NOISE_MODES, NoiseMode

GRID_MAX = 256  # the grid shows at most this many seeds: beyond, it is too big to look at
Progress = Callable[[int, int], None]  # (done, total)


def check_noise(noise_mode: str) -> NoiseMode:
    if noise_mode not in NOISE_MODES:
        raise UserError(f"--noise {noise_mode!r} is not one of {', '.join(NOISE_MODES)}")
    return cast(NoiseMode, noise_mode)


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """[N, C, H, W] in about [-1, 1] -> uint8 [N, H, W, C], rounded the official way."""
    images = (images.permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8)
    return images.cpu().numpy()


def _synthesis(
    model: LoadedGenerator, ws: torch.Tensor, noise_mode: NoiseMode, noise_seed: int | None
) -> torch.Tensor:
    if noise_seed is not None:
        torch.manual_seed(noise_seed)
    return model.G.synthesis(ws, noise_mode=noise_mode).float()


def synthesize(
    model: LoadedGenerator,
    ws: torch.Tensor,
    noise_mode: str = "const",
    noise_seeds: Sequence[int] | None = None,
) -> np.ndarray:
    """ws [N, num_ws, w_dim] -> uint8 images [N, H, W, C] in one pass.

    noise_mode: "const" (the model's fixed noise: reproducible), "random" or "none".
    noise_seeds: with "random", image i's noise is drawn from a generator seeded with
    noise_seeds[i] (default i), so the same call gives the same pixels; this runs the images
    one at a time, since all images of one pass share the global random stream.
    """
    noise = check_noise(noise_mode)
    ws = ws.to(model.device)
    with torch.inference_mode():
        if noise != "random":
            return to_uint8(_synthesis(model, ws, noise, None))
        seeds = range(len(ws)) if noise_seeds is None else noise_seeds
        out = []
        devices = [ws.device] if ws.is_cuda else []
        for seed, w in zip(seeds, ws.split(1), strict=True):
            with torch.random.fork_rng(devices=devices):  # leaves the caller's stream alone
                out.append(to_uint8(_synthesis(model, w, noise, seed)))
        return np.concatenate(out)


def synthesize_batches(
    model: LoadedGenerator,
    ws: torch.Tensor,
    noise_mode: str = "const",
    batch_size: int = 8,
    noise_seeds: Sequence[int] | None = None,
) -> Iterator[np.ndarray]:
    """The images of ws [N, num_ws, w_dim], one uint8 [H, W, C] at a time, batch_size per pass."""
    check_batch(batch_size)
    for start in range(0, len(ws), batch_size):
        stop = start + batch_size
        seeds = range(start, stop) if noise_seeds is None else noise_seeds[start:stop]
        yield from synthesize(model, ws[start:stop], noise_mode, seeds)


def check_batch(batch_size: int) -> None:
    if not 1 <= batch_size <= 1024:
        raise UserError(f"--batch {batch_size} is not allowed: 1 to 1024")


def check_settings(truncation_psi: float, noise_mode: str, batch_size: int) -> None:
    """The settings every command shares; checked before a model loads or a picture is drawn."""
    check_psi(truncation_psi)
    check_noise(noise_mode)
    check_batch(batch_size)


def _check_seed_settings(
    model: LoadedGenerator,
    truncation_psi: float,
    noise_mode: str,
    class_idx: int | None,
    batch_size: int,
) -> None:
    check_settings(truncation_psi, noise_mode, batch_size)
    class_labels(model, class_idx, 0)  # refuses a missing or impossible --class


def _seed_images(
    model: LoadedGenerator,
    seeds: Sequence[int],
    truncation_psi: float,
    noise_mode: str,
    class_idx: int | None,
    batch_size: int,
) -> Iterator[tuple[int, np.ndarray]]:
    for start in range(0, len(seeds), batch_size):
        batch = list(seeds[start : start + batch_size])
        ws = seed_ws(model, batch, truncation_psi, class_idx)
        images = synthesize(model, ws, noise_mode, noise_seeds=batch)
        yield from zip(batch, images, strict=True)


def generate_images(
    model: LoadedGenerator,
    seeds: Sequence[int],
    truncation_psi: float = 1.0,
    noise_mode: str = "const",
    class_idx: int | None = None,
    batch_size: int = 8,
) -> list[Image.Image]:
    """One PIL image per seed (see write_seed_images for the arguments)."""
    _check_seed_settings(model, truncation_psi, noise_mode, class_idx, batch_size)
    return [
        to_pil(img)
        for _, img in _seed_images(model, seeds, truncation_psi, noise_mode, class_idx, batch_size)
    ]


def seed_filename(seed: int) -> str:
    return f"seed{seed:04d}.png"  # the official tool's names: seed0042.png


def write_seed_images(
    model: LoadedGenerator,
    seeds: Sequence[int],
    outdir: str | Path,
    truncation_psi: float = 1.0,
    noise_mode: str = "const",
    class_idx: int | None = None,
    batch_size: int = 8,
    grid: bool = False,
    progress: Progress | None = None,
) -> list[Path]:
    """Write outdir/seedNNNN.png for every seed (and grid.png); returns the paths written.

    truncation_psi: < 1 trades variety for typical, cleaner heroes (0.7 is common).
    noise_mode: per-pixel noise "const" (reproducible), "random" (seeded per seed) or "none".
    class_idx: the class to draw, for a conditional model only.
    grid: also write grid.png with the first GRID_MAX seeds.
    Each PNG records the model, seed and settings in its text chunks.
    """
    _check_seed_settings(model, truncation_psi, noise_mode, class_idx, batch_size)
    outdir = prepare_outdir(outdir)
    settings = {
        "model": model.source,
        "network": model.network,
        "precision": model.precision,
        "truncation_psi": truncation_psi,
        "noise_mode": noise_mode,
        "class": "none" if class_idx is None else class_idx,
    }
    paths: list[Path] = []
    shown: list[np.ndarray] = []
    for seed, img in _seed_images(model, seeds, truncation_psi, noise_mode, class_idx, batch_size):
        paths.append(save_png(outdir / seed_filename(seed), img, {"seed": seed, **settings}))
        if grid and len(shown) < GRID_MAX:
            shown.append(img)
        if progress is not None:
            progress(len(paths), len(seeds))
    if shown:
        cols = math.ceil(math.sqrt(len(shown)))
        seeds_shown = ",".join(map(str, seeds[: len(shown)]))
        grid_text = {"seeds": seeds_shown, **settings}
        paths.append(save_png(outdir / "grid.png", make_grid(shown, cols), grid_text))
    return paths
