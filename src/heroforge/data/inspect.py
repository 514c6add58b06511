"""Scores that decide what a picture is: photographic or drawn, human-like or not, upper- or
full-body. Each score is a plain number with a threshold in PrepareConfig, recorded in the
manifest so that a person can see why a picture was kept or dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from heroforge.data.segment import Segmentation, channel_max


@dataclass
class Scores:
    realism: float  # 0 = flat cartoon colour, 1 = photographic shading and texture
    separability: float  # 1 = cleanly separated from its background, 0 = hopeless
    human: float  # 1 = a human-like character (head over shoulders, skin-coloured face)
    body_cut: float  # share of the bottom edge covered by the subject (a cut-off torso)

    def as_dict(self) -> dict[str, float]:
        return {k: round(float(v), 4) for k, v in self.__dict__.items()}


def realism(rgb: np.ndarray, seg: Segmentation) -> float:
    """Photos are noisy and shaded even where their colour looks flat; cartoons are flat there.

    The median colour step between neighbouring pixels inside the subject's smooth areas, on
    a 2-pixel grid: 0 for lossless cartoons, 1-4 for JPEG-compressed ones, 4 and more for
    photographs (sensor noise, texture, shading); and how many colours those pixels take
    (a few for flat colour even after JPEG, dozens for a photo). Both count half.
    """
    grid = (seg.mask & seg.smooth)[:-1:2, :-1:2]
    if grid.sum() < 64:
        grid = seg.mask[:-1:2, :-1:2]
        if grid.sum() < 64:
            return 0.0
    here = rgb[:-1:2, :-1:2][grid].astype(np.int16)
    right = rgb[:-1:2, 1::2][grid].astype(np.int16)
    down = rgb[1::2, :-1:2][grid].astype(np.int16)
    step = np.maximum(channel_max(np.abs(here - right)), channel_max(np.abs(here - down)))
    q = here >> 4
    counts = np.bincount(q[:, 0] * 256 + q[:, 1] * 16 + q[:, 2], minlength=4096)
    # colours needed to cover 90% of those pixels: a handful for flat colour, dozens for photos
    covering = int(np.searchsorted(np.cumsum(np.sort(counts)[::-1]), 0.9 * len(here))) + 1
    return float(0.5 * min(1.0, np.median(step) / 8.0) + 0.5 * min(1.0, covering / 40))


def separability(seg: Segmentation) -> float:
    """How well the background was explained: border coverage, minus leftover clutter and
    the subject falling into many pieces."""
    frag_penalty = 0.1 * max(0, seg.fragments - 1)
    return float(np.clip(seg.border_explained - 2 * seg.clutter - frag_penalty, 0, 1))


def _row_widths(mask: np.ndarray) -> np.ndarray:
    any_row = mask.any(1)
    left = np.where(any_row, np.argmax(mask, 1), 0)
    right = np.where(any_row, mask.shape[1] - 1 - np.argmax(mask[:, ::-1], 1), -1)
    return (right - left + 1).clip(0)


def body_cut(mask: np.ndarray) -> float:
    """Share of the bottom edge covered by the subject: a bust is cut off there."""
    return float(mask[-1].mean())


def _skin(rgb: np.ndarray) -> np.ndarray:
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
    h, s, v = hsv[..., 0].astype(int), hsv[..., 1].astype(int), hsv[..., 2].astype(int)
    return ((h <= 25) | (h >= 170)) & (s >= 30) & (s <= 190) & (v >= 50)


def human_likeness(rgb: np.ndarray, mask: np.ndarray, body_cut: float) -> float:
    """Three cues, each in [0, 1], averaged: upright (taller than wide, or a bust cut by the
    bottom edge), a head over shoulders (the head zone is not a thin spike like an antenna and
    not wider than everything below it by far), and skin colour in the upper part."""
    rows = np.flatnonzero(mask.any(1))
    cols = np.flatnonzero(mask.any(0))
    if rows.size < 8 or cols.size < 8:
        return 0.0
    top, bottom = rows[0], rows[-1]
    height, width = bottom - top + 1, cols[-1] - cols[0] + 1
    aspect = max(height / width, 1.1 if body_cut >= 0.1 else 0.0)
    upright = np.clip((aspect - 0.8) / 0.3, 0, 1)
    widths = _row_widths(mask[top : bottom + 1]).astype(float)
    head = widths[int(0.05 * height) : max(int(0.05 * height) + 1, int(0.2 * height))]
    below = widths[int(0.25 * height) : max(int(0.25 * height) + 1, int(0.6 * height))]
    shoulders = float(np.median(below)) / max(1.0, float(np.median(head)))
    shaped = 1.0 if 0.3 <= shoulders <= 8.0 else 0.0
    zone = mask.copy()
    zone[top + int(0.45 * height) :] = False
    skin = np.clip(float(_skin(rgb)[zone].mean()) / 0.05, 0, 1) if zone.any() else 0.0
    return float((upright + shaped + skin) / 3)


def inspect(rgb: np.ndarray, seg: Segmentation) -> Scores:
    cut = body_cut(seg.mask)
    return Scores(
        realism=realism(rgb, seg),
        separability=separability(seg),
        human=human_likeness(rgb, seg.mask, cut),
        body_cut=cut,
    )
