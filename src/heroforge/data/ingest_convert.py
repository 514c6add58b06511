"""Pixel conversions for ingest: any decoded Pillow image to 8-bit RGB plus an optional alpha.

Pure functions on an already loaded image, no I/O: `ingest.py` decides what to trust and
calls these. Each conversion appends a short note so that a reviewer can see what was done
to a picture ("cmyk->rgb", "16-bit->8-bit", ...).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

# Greyscale modes deeper than 8 bits: Pillow cannot convert them to RGB without clipping.
DEEP_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I", "F"})
ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})
MODE_NOTES = {
    "1": "greyscale->rgb",
    "L": "greyscale->rgb",
    "LA": "greyscale->rgb",
    "La": "greyscale->rgb",
    "CMYK": "cmyk->rgb",
    "YCbCr": "ycbcr->rgb",
    "LAB": "lab->rgb",
    "HSV": "hsv->rgb",
}

# EXIF orientation tag value -> the array operation that shows the picture upright.
_ORIENTATIONS = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.swapaxes(0, 1),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: a[::-1, ::-1].swapaxes(0, 1),
    8: lambda a: np.rot90(a, 1),
}


def to_rgb_alpha(img: Image.Image) -> tuple[np.ndarray, np.ndarray | None, list[str]]:
    """(H x W x 3 uint8, H x W uint8 alpha or None, notes) for a loaded image of any mode."""
    if img.mode in DEEP_MODES:
        grey, note = deep_to_8bit(np.asarray(img), img.mode)
        return np.repeat(grey[:, :, None], 3, axis=2), None, [note, "greyscale->rgb"]
    notes = [mode_note] if (mode_note := _mode_note(img)) else []
    if img.mode in ("RGBa", "La"):
        # Premultiplied colour is darkened by its alpha; store it straight like every other mode.
        img = img.convert("RGBA" if img.mode == "RGBa" else "LA")
        notes.append("premultiplied alpha->straight")
    target = "RGBA" if _has_alpha(img) else "RGB"
    pixels = np.asarray(img if img.mode == target else img.convert(target))
    if target == "RGB":
        return pixels, None, notes
    alpha = pixels[:, :, 3]
    if alpha.min() == 255:
        # A fully opaque alpha channel carries nothing; later stages can skip compositing.
        return np.ascontiguousarray(pixels[:, :, :3]), None, [*notes, "alpha dropped: opaque"]
    return np.ascontiguousarray(pixels[:, :, :3]), alpha.copy(), notes


def _has_alpha(img: Image.Image) -> bool:
    # PNG and GIF keep transparency outside the mode: a tRNS colour key or transparent palette
    # entries.
    if img.mode in ALPHA_MODES or "transparency" in img.info:
        return True
    return img.mode == "P" and img.palette is not None and img.palette.mode == "RGBA"


def _mode_note(img: Image.Image) -> str | None:
    if img.mode in ("P", "PA"):
        return "palette->rgba" if _has_alpha(img) else "palette->rgb"
    return MODE_NOTES.get(img.mode)


def deep_to_8bit(values: np.ndarray, mode: str) -> tuple[np.ndarray, str]:
    """Scale a 16-bit, 32-bit or float greyscale array to uint8 over its full range.

    Pillow's own convert("L") clips these at 255, which turns most 16-bit pictures white.
    """
    if mode == "F":
        values = np.where(np.isfinite(values), values, 0.0)
        if values.size and values.min() >= 0.0 and values.max() <= 1.0:
            return np.rint(values * 255.0).astype(np.uint8), "float->8-bit"
        return _stretch(values), "float->8-bit (stretched)"
    if values.size == 0 or (values.min() >= 0 and values.max() <= 65535):
        # Round to nearest: 65535 -> 255 and 32768 -> 128, the same as 8-bit 0x80 in 16 bits.
        scaled = (values.astype(np.uint32) * 255 + 32767) // 65535
        return scaled.astype(np.uint8), "16-bit->8-bit"
    return _stretch(values), "32-bit->8-bit (stretched)"


def _stretch(values: np.ndarray) -> np.ndarray:
    """Map min..max linearly onto 0..255: for values with no known full scale."""
    lo, hi = float(values.min()), float(values.max())
    if hi <= lo:
        return np.zeros(values.shape, np.uint8)
    return np.rint((values.astype(np.float64) - lo) * (255.0 / (hi - lo))).astype(np.uint8)


def orient(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (1..8) to an H x W (x C) array; 1 and unknown values: as is."""
    turn = _ORIENTATIONS.get(orientation)
    return pixels if turn is None else np.ascontiguousarray(turn(pixels))
