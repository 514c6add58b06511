"""Pictures made up for a test: random pixels, encoded in any format Pillow writes."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def random_pixels(count: int, height: int, width: int, seed: int = 0) -> list[np.ndarray]:
    """count RGB arrays of uniform noise, drawn one after another from one seeded generator."""
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(count)]


def encode(picture: Image.Image | np.ndarray, fmt: str = "PNG", **params) -> bytes:
    """The file bytes of a picture (an Image, or an array Image.fromarray takes)."""
    if isinstance(picture, np.ndarray):
        picture = Image.fromarray(picture)
    buf = io.BytesIO()
    picture.save(buf, fmt, **params)
    return buf.getvalue()
