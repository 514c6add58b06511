"""Scores that decide what a picture is: photographic or drawn, human-like or not, upper- or
full-body. Each score is a plain number with a threshold in PrepareConfig, recorded in the
manifest so that a person can see why a picture was kept or dropped. The face and pose scores
come from MediaPipe (humancues.py); everything here is colour and shape.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from heroforge.data.segment import Segmentation


@dataclass
class Scores:
    realism: float  # 0 = flat cartoon colour, 1 = photographic shading and texture
    separability: float  # 1 = cleanly separated from its background, 0 = hopeless
    human: float  # 1 = a human-like character (head over shoulders, skin-coloured face)
    body_cut: float  # share of the bottom edge covered by the subject (a cut-off torso)
    fill: float  # share of its bounding box the subject covers: busts are compact
    tall: float  # height / width of the subject's bounding box
    base: float  # width of the line the subject ends on, per unit of its height (body_base)
    # Measured by humancues.py, only where they can decide; -1 = not measured (colour cues
    # only, or not needed)
    head: float = -1.0  # diameter of a round head set apart at the top (headshape.py), 0 = none
    face: float = -1.0  # best full-range face detector score
    face_short: float = -1.0  # best short-range face detector score
    pose: float = -1.0  # pose landmarks: mean visibility of nose and shoulders, 0 = no pose
    knee: float = -1.0  # best visibility of a knee inside the picture
    mesh: float = -1.0  # 1: the face mesh confirmed a weaker face, 0: it did not
    far_face: float = -1.0  # 1: a face found with the subject smaller in the view, 0: none
    figure: float = -1.0  # the pose landmark model's belief that a person fills the subject view

    def as_dict(self) -> dict[str, float]:
        return {k: round(float(v), 4) for k, v in self.__dict__.items()}


def realism(rgb: np.ndarray, seg: Segmentation) -> float:
    """Photos are textured and shaded everywhere; drawings have large flat areas.

    The share of subject pixels whose grey-level Sobel gradient is below 4: photographs
    (and the synthetic photographic people) measure 0.01-0.19, drawings 0.2 and more, even as
    JPEG and with soft gradients (measured on the synthetic set and on Noto emoji art).
    Mapped so that a share of 0.30 or more reads 0 and 0.15 or less reads 1.
    """
    if seg.mask.sum() < 64:
        return 0.0
    # the subject's box and one pixel around it, as far as the Sobel kernels reach
    x, y, w, h = cv2.boundingRect(seg.mask.view(np.uint8))
    y0, x0 = max(0, y - 1), max(0, x - 1)
    box = np.s_[y0 : y + h + 1, x0 : x + w + 1]
    grey = cv2.cvtColor(np.ascontiguousarray(rgb[box]), cv2.COLOR_RGB2GRAY)
    gx, gy = cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1)
    # whole numbers, so comparing squares is exact: the gradient's length below 4
    flat = float((gx * gx + gy * gy < 16)[seg.mask[box]].mean())
    return float(np.clip((0.30 - flat) / 0.15, 0, 1))


def _row_widths(mask: np.ndarray) -> np.ndarray:
    any_row = mask.any(1)
    left = np.where(any_row, np.argmax(mask, 1), 0)
    right = np.where(any_row, mask.shape[1] - 1 - np.argmax(mask[:, ::-1], 1), -1)
    return (right - left + 1).clip(0)


def body_cut(mask: np.ndarray) -> float:
    """Share of the bottom edge covered by the subject: a bust is cut off there."""
    return float(mask[-1].mean())


def compactness(mask: np.ndarray) -> tuple[float, float]:
    """(fill, height / width) of the subject's bounding box. A head or bust that floats in
    the picture is compact and squat (fill 0.5-0.95, 0.65-1.35 tall per unit width); a whole
    figure with limbs fills little and stands tall (about 0.4 and 1.4 and more)."""
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    if rows.size == 0:
        return 0.0, 0.0
    h, w = rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1
    return float(mask.sum() / (h * w)), float(h / w)


def body_base(mask: np.ndarray) -> float:
    """How wide the line is that the subject ends on at the bottom, per unit of its height:
    the columns whose lowest subject pixel lies within 4% of its height of its lowest row.
    A bust ends on a straight cut (the picture's bottom edge, or a line where the drawing
    stops): 0.6 and more on drawn art; a standing figure ends on its feet (0.1-0.4), a head on
    its chin (0.2-0.4). Measured on the three real-art families of benchmarks/prepare_realart.py."""
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    if rows.size == 0:
        return 0.0
    box = mask[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    height = box.shape[0]
    lowest = np.where(box.any(0), height - 1 - np.argmax(box[::-1], 0), -1)
    return float((lowest >= height - 1 - 0.04 * height).sum() / height)


# Skin has colour: every drawn skin tone, the lightest included, lies 40 or more levels apart
# between its strongest and weakest channel. A dark warm grey (Streamline's outlines, 69/65/60)
# passes the hue and saturation test below with a spread of 9
MIN_SKIN_CHROMA = 20


def _skin(rgb: np.ndarray) -> np.ndarray:
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
    h, s, v = hsv[..., 0].astype(int), hsv[..., 1].astype(int), hsv[..., 2].astype(int)
    chroma = s * v >= MIN_SKIN_CHROMA * 255  # HSV saturation is the spread over the maximum
    return ((h <= 25) | (h >= 170)) & (s >= 30) & (s <= 190) & (v >= 50) & chroma


# The face of a head under a tall hat, a helmet or a crown lies below the top 45% of the
# subject (blob Santas, guards, caps: no skin there at all); 70% still leaves out the body of a
# whole figure, whose clothes and limbs say less (realart benchmarks, every family)
SKIN_ZONE = 0.7


def human_likeness(rgb: np.ndarray, mask: np.ndarray, body_cut: float) -> float:
    """Three cues, each in [0, 1], averaged: upright (taller than wide, or a bust cut by the
    bottom edge), a head over shoulders (the head zone is not a thin spike like an antenna and
    not wider than everything below it by far), and skin colour in the upper SKIN_ZONE of the
    subject's height."""
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
    upper = np.s_[top : top + int(SKIN_ZONE * height), cols[0] : cols[-1] + 1]
    zone = mask[upper]
    skin = np.clip(float(_skin(rgb[upper])[zone].mean()) / 0.05, 0, 1) if zone.any() else 0.0
    return float((upright + shaped + skin) / 3)


def inspect(rgb: np.ndarray, seg: Segmentation) -> Scores:
    """Every score of one picture, from its pixels and its segmentation."""
    cut = body_cut(seg.mask)
    fill, tall = compactness(seg.mask)
    return Scores(
        realism=realism(rgb, seg),
        separability=seg.separability,
        human=human_likeness(rgb, seg.mask, cut),
        body_cut=cut,
        fill=fill,
        tall=tall,
        base=body_base(seg.mask),
    )
