"""A closer look at a subject that is small in its picture.

`prepare` analyses pictures shrunk to at most WORK_SIDE. A whole figure standing small on a
large canvas (often under 10% of its area) is then about a hundred pixels tall: its head is a
few pixels wide for the face, mesh and pose detectors, its outlines take most of its pixels
(so the realism score reads it as photographic texture), and its framed output is an
enlargement of those few pixels. The decoded file usually holds that subject several times
bigger: cut around the subject first, then shrink only the cut-out to WORK_SIDE, and analyse
that instead (measured on the real-art sets of benchmarks/prepare_realart.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# A subject whose longer side is below this many pixels at work size is looked at closer, when
# the decoded file has at least CLOSER times its pixels: up to here the detectors and the
# realism score hold (heads and busts that fill a 512-768 px picture measure 300 px and more)
SMALL_SIDE = 320
CLOSER = 1.5
# Background kept around the subject, as a share of its longer side: the segmentation reads
# the background from the cut-out's border, and the framing needs its own margin (0.06)
MARGIN = 0.25


@dataclass
class Closeup:
    rgb: np.ndarray  # the cut-out of the decoded picture, at most work_side big
    alpha: np.ndarray | None  # ... and of its alpha channel (None: the file had none)
    factor: float  # the cut-out's scale against the decoded picture's


def closeup(
    decoded_rgb: np.ndarray,
    decoded_alpha: np.ndarray | None,
    mask: np.ndarray,
    work_factor: float,
    work_side: int,
) -> Closeup | None:
    """The subject found in `mask` (at work size: the decoded picture shrunk by work_factor to
    at most work_side) cut out of the decoded picture with a margin and shrunk to at most work_side;
    None when the subject is big enough at work size or the decoded picture holds no more of
    it. The cut-out never reaches past the picture: a subject on its bottom edge stays there."""
    x, y, w, h = cv2.boundingRect(mask.view(np.uint8))
    if w == 0 or max(w, h) >= SMALL_SIDE:
        return None
    full_h, full_w = decoded_rgb.shape[:2]
    to_full = 1 / work_factor  # decoded pixels per work-size pixel
    pad = MARGIN * max(w, h)
    x0, x1 = max(0, round((x - pad) * to_full)), min(full_w, round((x + w + pad) * to_full))
    y0, y1 = max(0, round((y - pad) * to_full)), min(full_h, round((y + h + pad) * to_full))
    factor = min(1.0, work_side / max(x1 - x0, y1 - y0))
    if to_full * factor < CLOSER:
        return None
    rgb, alpha = decoded_rgb[y0:y1, x0:x1], None
    if decoded_alpha is not None:
        alpha = decoded_alpha[y0:y1, x0:x1]
    if factor < 1:
        size = (max(1, round((x1 - x0) * factor)), max(1, round((y1 - y0) * factor)))
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        if alpha is not None:
            alpha = cv2.resize(alpha, size, interpolation=cv2.INTER_AREA)
    return Closeup(np.ascontiguousarray(rgb), alpha, factor)
