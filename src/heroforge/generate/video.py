"""Frames -> animation files: GIF with Pillow (always there), MP4 with imageio + ffmpeg.

MP4 needs the optional extra `heroforge[video]` (imageio and imageio-ffmpeg, which ships an
ffmpeg binary in its wheel). Both writers take frames one at a time from an iterator, and the
file appears under its name only once complete.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from heroforge.errors import UserError
from heroforge.fileio import atomic_file
from heroforge.generate.output import to_pil

FORMATS = ("gif", "mp4")
MP4_INSTALL = "pip install 'heroforge[video]' (imageio and imageio-ffmpeg)"


def check_format(fmt: str, writing: bool = True) -> None:
    """Refuse an unknown format, or (writing) mp4 without its packages, before any frame is
    made."""
    if fmt not in FORMATS:
        raise UserError(f"--format {fmt!r} is not one of {', '.join(FORMATS)}")
    if writing and fmt == "mp4":
        try:
            import imageio.v2  # noqa: F401
            import imageio_ffmpeg  # noqa: F401
        except ImportError:
            raise UserError(f"MP4 needs imageio and imageio-ffmpeg: {MP4_INSTALL}") from None


def check_fps(fps: float) -> None:
    if not 1 <= fps <= 100:
        raise UserError(f"--fps {fps} is not allowed: 1 to 100")


def write_gif(path: Path, frames: Iterable[np.ndarray], fps: float) -> Path:
    """An endlessly repeating GIF. GIF delays count in 1/100 s, so fps is rounded to that."""
    frames = iter(frames)
    first = to_pil(next(frames))
    with atomic_file(path, durable=False) as f:
        first.save(
            f,
            format="GIF",
            save_all=True,
            append_images=(to_pil(frame) for frame in frames),
            duration=round(1000 / fps),
            loop=0,
        )
    return path


def write_mp4(path: Path, frames: Iterable[np.ndarray], fps: float) -> Path:
    """An H.264 MP4 (yuv420p, which every player decodes)."""
    check_format("mp4")
    import imageio.v2 as imageio

    # ffmpeg picks the container from the name's extension, so the temp file keeps ".mp4".
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.mp4")
    try:
        writer = imageio.get_writer(
            tmp,
            format="FFMPEG",
            fps=fps,
            codec="libx264",
            quality=8,
            pixelformat="yuv420p",
            # Every heroforge frame side is a multiple of 8 (resolutions are powers of two from
            # 8 up), so this never rescales; the default of 16 would stretch small grids.
            macro_block_size=8,
        )
        with writer:
            for frame in frames:
                writer.append_data(np.repeat(frame, 3, axis=2) if frame.shape[2] == 1 else frame)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_animation(path: Path, frames: Iterable[np.ndarray], fps: float, fmt: str) -> Path:
    """Write frames (uint8 [H, W, C]) as fmt ("gif" or "mp4") at path."""
    check_format(fmt)
    check_fps(fps)
    return (write_gif if fmt == "gif" else write_mp4)(path, frames, fps)
