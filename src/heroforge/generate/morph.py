"""Animations that walk through heroes, and grids of such walks.

Three paths between key heroes:
- "slerp-z": spherical interpolation of z between consecutive seeds. The mapping network
  normalises z, so only its direction matters, and slerp moves it at a constant angular speed.
- "lerp-w":  straight lines in w: constant speed along each step, but the direction (and so
  the speed of change on screen) jumps at every key.
- "cubic-w": a Catmull-Rom spline through the keys in w: it passes through every key with a
  continuous velocity, so there is no jolt at key frames.
w paths work on the full ws [num_ws, w_dim], so latent files (children, projections) can be
keys too; slerp-z needs seeds.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

from heroforge.errors import UserError
from heroforge.generate.latents import Key, map_z, resolve_keys
from heroforge.generate.model import LoadedGenerator
from heroforge.generate.output import make_grid, prepare_outdir
from heroforge.generate.sample import Progress, check_noise, check_settings, synthesize_batches
from heroforge.generate.video import check_format, check_fps, write_animation

INTERPOLATIONS = ("cubic-w", "lerp-w", "slerp-z")
MAX_FRAMES = 10_000  # per animation: beyond, hours of CPU and a GIF nobody can open


def frame_count(num_keys: int, frames_per_step: int, loop: bool) -> int:
    """Frames of a walk: frames_per_step per step, plus the last key unless the walk loops
    (then the frame after the last is the first, so the animation repeats seamlessly)."""
    steps = num_keys if loop else num_keys - 1
    return steps * frames_per_step + (0 if loop else 1)


def _frame_times(
    num_keys: int, frames_per_step: int, loop: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """For every frame: the step it is in (from key seg to key seg + 1) and t in [0, 1]."""
    steps = num_keys if loop else num_keys - 1
    u = torch.arange(frame_count(num_keys, frames_per_step, loop), dtype=torch.float64)
    u = u / frames_per_step
    seg = u.floor().long().clamp(max=steps - 1)  # the last frame ends the last step at t = 1
    return seg, (u - seg).float()


def _neighbours(points: torch.Tensor, seg: torch.Tensor, loop: bool) -> list[torch.Tensor]:
    """points[seg - 1], points[seg], points[seg + 1], points[seg + 2], per frame.

    An open walk gets mirrored end points (2 * P0 - P1 before the first key, likewise after the
    last), which makes the spline's end tangents P1 - P0: it starts and ends at full speed.
    """
    if loop:
        return [points[(seg + d) % len(points)] for d in (-1, 0, 1, 2)]
    padded = torch.cat([2 * points[:1] - points[1:2], points, 2 * points[-1:] - points[-2:-1]])
    return [padded[seg + 1 + d] for d in (-1, 0, 1, 2)]


def _expand(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return t.to(like).reshape(-1, *[1] * (like.ndim - 1))


def lerp_path(points: torch.Tensor, seg: torch.Tensor, t: torch.Tensor, loop: bool) -> torch.Tensor:
    _, p1, p2, _ = _neighbours(points, seg, loop)
    return torch.lerp(p1, p2, _expand(t, p1))


def catmull_rom_path(
    points: torch.Tensor, seg: torch.Tensor, t: torch.Tensor, loop: bool
) -> torch.Tensor:
    """Uniform Catmull-Rom: the tangent at key i is (P[i+1] - P[i-1]) / 2, shared by the
    steps on both sides of it, which is what keeps the velocity continuous at keys."""
    p0, p1, p2, p3 = _neighbours(points, seg, loop)
    t = _expand(t, p1)
    t2, t3 = t * t, t * t * t
    m1, m2 = (p2 - p0) / 2, (p3 - p1) / 2
    # The cubic Hermite basis: positions p1, p2 and tangents m1, m2 at the step's two ends.
    h00, h10, h01, h11 = 2 * t3 - 3 * t2 + 1, t3 - 2 * t2 + t, 3 * t2 - 2 * t3, t3 - t2
    return h00 * p1 + h10 * m1 + h01 * p2 + h11 * m2


def slerp_path(
    points: torch.Tensor, seg: torch.Tensor, t: torch.Tensor, loop: bool
) -> torch.Tensor:
    """Between rows of points [K, D]: the direction turns at a constant angular speed (slerp
    of the unit vectors) while the length changes linearly; near-parallel pairs just lerp."""
    _, a, b, _ = _neighbours(points, seg, loop)
    t = _expand(t, a)
    len_a, len_b = a.norm(dim=1, keepdim=True), b.norm(dim=1, keepdim=True)
    unit_a, unit_b = a / len_a.clamp_min(1e-12), b / len_b.clamp_min(1e-12)
    theta = torch.acos((unit_a * unit_b).sum(dim=1, keepdim=True).clamp(-1, 1))
    sin = torch.sin(theta)
    straight = sin < 1e-6
    safe = sin.clamp_min(1e-6)
    wa = torch.where(straight, 1 - t, torch.sin((1 - t) * theta) / safe)
    wb = torch.where(straight, t, torch.sin(t * theta) / safe)
    direction = wa * unit_a + wb * unit_b
    return direction * torch.lerp(len_a, len_b, t)


def walk_ws(
    model: LoadedGenerator,
    keys: Sequence[Key],
    frames_per_step: int,
    interp: str = "cubic-w",
    loop: bool = False,
    truncation_psi: float = 1.0,
    class_idx: int | None = None,
) -> torch.Tensor:
    """ws [frames, num_ws, w_dim] of a walk through keys (truncation_psi and class_idx are
    used by slerp-z only: w keys carry theirs already)."""
    check_walk(len(keys), frames_per_step, interp, loop, walks=1)
    seg, t = _frame_times(len(keys), frames_per_step, loop)
    if interp == "slerp-z":
        zs = [k.z for k in keys if k.z is not None]
        missing = [k.label for k in keys if k.z is None]
        if missing:
            raise UserError(f"slerp-z needs seeds, but {missing[0]} is a saved w: use cubic-w")
        z = slerp_path(torch.stack(zs).double(), seg, t, loop)
        return map_z(model, z, truncation_psi, class_idx)
    path = catmull_rom_path if interp == "cubic-w" else lerp_path
    return path(torch.stack([k.ws for k in keys]), seg.to(keys[0].ws.device), t, loop)


def check_walk(num_keys: int, frames_per_step: int, interp: str, loop: bool, walks: int) -> None:
    if interp not in INTERPOLATIONS:
        raise UserError(f"--interp {interp!r} is not one of {', '.join(INTERPOLATIONS)}")
    if num_keys < 2:
        raise UserError(f"a walk needs at least 2 seeds, got {num_keys}")
    if not 1 <= frames_per_step <= 1000:
        raise UserError(f"--frames-per-step {frames_per_step} is not allowed: 1 to 1000")
    frames = frame_count(num_keys, frames_per_step, loop) * walks
    if frames > MAX_FRAMES:
        raise UserError(f"that is {frames} pictures to draw; at most {MAX_FRAMES} at a time")


def morph_frames(
    model: LoadedGenerator,
    walks: Sequence[Sequence[Key]],
    frames_per_step: int,
    interp: str = "cubic-w",
    loop: bool = False,
    cols: int = 1,
    noise_mode: str = "const",
    truncation_psi: float = 1.0,
    class_idx: int | None = None,
    batch_size: int = 8,
    progress: Progress | None = None,
) -> Iterator[np.ndarray]:
    """The frames (uint8 [H, W, C]) of walks played side by side, `cols` walks per row.

    All walks need the same number of keys so that they reach their keys together.
    """
    check_noise(noise_mode)  # before the walks' mapping passes
    paths = [
        walk_ws(model, keys, frames_per_step, interp, loop, truncation_psi, class_idx)
        for keys in walks
    ]
    cells = len(paths)
    ws = torch.stack(paths, dim=1).flatten(0, 1)  # frame-major: one frame's cells in a row
    frames = len(ws) // cells
    images = synthesize_batches(model, ws, noise_mode, batch_size)
    for frame in range(frames):
        tiles = [next(images) for _ in range(cells)]
        yield tiles[0] if cells == 1 else make_grid(tiles, cols)
        if progress is not None:
            progress(frame + 1, frames)


def check_grid(num_keys: int, rows: int, cols: int) -> None:
    walks = rows * cols
    if rows < 1 or cols < 1:
        raise UserError(f"--grid {rows}x{cols}: rows and columns start at 1")
    if walks == 1 and num_keys < 2:
        raise UserError(f"a walk needs at least 2 seeds, got {num_keys}")
    if num_keys % walks or num_keys // walks < 2:
        raise UserError(
            f"--grid {rows}x{cols} makes {walks} walks of at least 2 seeds each: give "
            f"{2 * walks}, {3 * walks}, ... seeds (a multiple of {walks}), got {num_keys}"
        )


def split_walks(keys: Sequence[Key], rows: int, cols: int) -> list[list[Key]]:
    """rows * cols walks out of the keys, each taking the next equal share, in order."""
    check_grid(len(keys), rows, cols)
    per = len(keys) // (rows * cols)
    return [list(keys[i * per : (i + 1) * per]) for i in range(rows * cols)]


def check_morph(
    num_keys: int,
    frames_per_step: int,
    interp: str,
    loop: bool,
    grid: tuple[int, int],
    fps: float,
    fmt: str,
) -> None:
    """Everything write_morph can refuse before loading a key or drawing a frame."""
    rows, cols = grid
    check_grid(num_keys, rows, cols)
    check_walk(num_keys // (rows * cols), frames_per_step, interp, loop, walks=rows * cols)
    check_format(fmt)
    check_fps(fps)


def morph_name(keys: Sequence[Key], interp: str, rows: int, cols: int, fmt: str) -> str:
    labels = [k.label for k in keys[:4]] + ([f"and{len(keys) - 4}more"] if len(keys) > 4 else [])
    grid = f"-grid{rows}x{cols}" if rows * cols > 1 else ""
    return f"morph-{interp}{grid}-{'-'.join(labels)}.{fmt}"


def write_morph(
    model: LoadedGenerator,
    keys: Sequence[int | Path],
    outdir: str | Path,
    frames_per_step: int = 30,
    interp: str = "cubic-w",
    loop: bool = False,
    grid: tuple[int, int] = (1, 1),
    fps: float = 30,
    fmt: str = "gif",
    truncation_psi: float = 1.0,
    noise_mode: str = "const",
    class_idx: int | None = None,
    batch_size: int = 8,
    progress: Progress | None = None,
) -> Path:
    """Write a morph animation through keys (seeds and latent files) into outdir.

    frames_per_step: frames from one key to the next; fps: playback speed.
    interp: "cubic-w" (smooth), "lerp-w" or "slerp-z" (seeds only); loop: return to the
    first key at the end. grid (rows, cols): that many walks side by side, the keys split
    between them in order. fmt: "gif" or "mp4". The other settings as for generate.
    Returns the animation's path.
    """
    check_morph(len(keys), frames_per_step, interp, loop, grid, fps, fmt)
    check_settings(truncation_psi, noise_mode, batch_size)
    rows, cols = grid
    outdir = prepare_outdir(outdir)
    resolved = resolve_keys(model, keys, truncation_psi, class_idx)
    walks = split_walks(resolved, rows, cols)
    frames = morph_frames(
        model,
        walks,
        frames_per_step,
        interp,
        loop,
        cols,
        noise_mode,
        truncation_psi,
        class_idx,
        batch_size,
        progress,
    )
    return write_animation(outdir / morph_name(resolved, interp, rows, cols, fmt), frames, fps, fmt)
