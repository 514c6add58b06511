"""Writing what the generate commands make: the output folder, PNGs with metadata, grids."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from PIL import Image
from PIL.PngImagePlugin import PngInfo

import heroforge
from heroforge.errors import UserError, write_failure
from heroforge.fileio import atomic_file


def prepare_outdir(outdir: str | Path) -> Path:
    """Create outdir if needed and prove it writable, before any slow work starts."""
    path = Path(outdir).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except FileExistsError:
        raise UserError(f"--outdir {path} is a file, not a folder") from None
    except OSError as err:
        raise write_failure(f"cannot write to --outdir {path}", err) from None
    return path


def to_pil(image: np.ndarray) -> Image.Image:
    """uint8 [H, W, C] (C = 3 or 1) -> a PIL image, RGB or greyscale."""
    return Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)


def save_png(path: Path, image: np.ndarray, text: Mapping[str, object] | None = None) -> Path:
    """Write image as a PNG whose text chunks hold `text` (the settings that made it).

    Atomic but not fsynced: a picture can be made again, so the slow sync is not worth it.
    """
    info = PngInfo()
    info.add_text("Software", f"heroforge {heroforge.__version__}")
    for key, value in (text or {}).items():
        info.add_text(key, str(value))
    with atomic_file(path, durable=False) as f:
        to_pil(image).save(f, format="PNG", pnginfo=info)
    return path


def make_grid(images: Sequence[np.ndarray | None], cols: int) -> np.ndarray:
    """Equal-sized images [H, W, C] in rows of `cols`; None and the unfilled tail are white."""
    shape = next(img.shape for img in images if img is not None)
    rows = -(-len(images) // cols)
    h, w, c = shape
    grid = np.full((rows * h, cols * w, c), 255, dtype=np.uint8)
    for i, img in enumerate(images):
        if img is not None:
            r, k = divmod(i, cols)
            grid[r * h : (r + 1) * h, k * w : (k + 1) * w] = img
    return grid
