"""Background as a small palette (method "band"), for fine patterns that leave no smooth regions.

The palette is the recurring colours of the band that frames the subject (top edge, upper
sides); background is what has those colours, or a blend of two of them (anti-aliased pattern
edges), and connects to the border.
"""

from __future__ import annotations

import cv2
import numpy as np

from heroforge.data.segment_regions import MATCH_TOL

PALETTE_SIZE = 6  # colours sought in the framing band by the band method
PALETTE_MIN_SHARE = 0.03  # of the band: smaller clusters are the subject's or noise
PATTERN_RUNS = 4  # separate stretches of the frame in which a pattern colour shows


def _framing_palette(rgb: np.ndarray) -> np.ndarray:
    """Main colours of the band that frames the subject: the top rows and the upper 60% of
    both sides (k-means, clusters of at least PALETTE_MIN_SHARE of the band, recurring)."""
    h, w = rgb.shape[:2]
    k = max(3, min(h, w) // 64)
    band = np.concatenate(
        [
            rgb[:k].reshape(-1, 3),
            rgb[: int(0.6 * h), :k].reshape(-1, 3),
            rgb[: int(0.6 * h), -k:].reshape(-1, 3),
        ]
    ).astype(np.float32)
    band = band[:: max(1, len(band) // 5000)]
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 1.0)
    cv2.setRNGSeed(0)  # the same picture always gets the same palette
    # bestLabels=None: no initial labels (with KMEANS_PP_CENTERS they would be ignored anyway)
    _, labels, centres = cv2.kmeans(  # type: ignore[call-overload]  # stubs refuse None labels
        band, PALETTE_SIZE, None, criteria, 2, cv2.KMEANS_PP_CENTERS
    )
    share = np.bincount(labels.ravel(), minlength=PALETTE_SIZE) / len(labels)
    # A pattern's colours recur along the frame; a subject that reaches it (arms out to the
    # sides, hair at the top) shows its colours in one stretch per side. Kept: the main
    # colour and those seen in PATTERN_RUNS separate stretches of the outermost pixels.
    line = np.concatenate([rgb[0], rgb[: int(0.6 * h), 0], rgb[: int(0.6 * h), -1]])
    nearest = np.linalg.norm(line[:, None].astype(np.float32) - centres[None], axis=2).argmin(1)
    starts = np.r_[True, nearest[1:] != nearest[:-1]]
    runs = np.bincount(nearest[starts], minlength=PALETTE_SIZE)
    recurring = (runs >= PATTERN_RUNS) | (share == share.max())
    return centres[(share >= PALETTE_MIN_SHARE) & recurring]


def _near_palette(colours: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """Which colours (N x 3) lie within MATCH_TOL of a palette colour or of a blend of two of
    them (the anti-aliased edge between two stripes)."""
    near = np.zeros(len(colours), bool)
    for i, a in enumerate(palette):
        offset = colours - a
        for b in palette[i:]:  # b == a: the colour itself
            d = b - a
            t = np.clip(offset @ d / max(float(d @ d), 1.0), 0, 1)
            miss = offset - t[:, None] * d
            near |= np.sqrt(np.einsum("ij,ij->i", miss, miss)) < MATCH_TOL
    return near


def _coloured(pixels: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """Which pixels (any shape x 3, uint8) are coloured like the palette (_near_palette),
    decided once per colour present at 6 bits per channel (a 1.5-level error at most)."""
    q = (pixels >> 2).astype(np.int32)
    codes = (q[..., 0] << 12) | (q[..., 1] << 6) | q[..., 2]
    present = np.unique(codes) if codes.size < 1 << 14 else _present(codes)
    levels = np.stack([present >> 12, (present >> 6) & 63, present & 63], 1)
    lookup = np.zeros(1 << 18, bool)
    lookup[present] = _near_palette(levels.astype(np.float32) * 4 + 1.5, palette)
    return lookup[codes]


def _present(codes: np.ndarray) -> np.ndarray:
    """The distinct codes of a big array (a bincount beats sorting there)."""
    return np.flatnonzero(np.bincount(codes.ravel(), minlength=1 << 18))


def _frame_bound(rgb: np.ndarray, palette: np.ndarray) -> float:
    """The most of the frame (the border but the bottom edge) that band_background can call
    background, from three-pixel strips along it only: a frame pixel ends up background only
    if it, or a pixel within two of it, is palette-coloured (the last step's 3 x 3 opening
    reaches no further)."""
    h = rgb.shape[0]
    near = np.ones((5, 5), np.uint8)
    top, left, right = (
        cv2.dilate(_coloured(strip, palette).view(np.uint8), near)
        for strip in (rgb[:3], rgb[:, :3], rgb[:, -3:])
    )
    reach = np.concatenate([top[0], left[1 : h - 1, 0], right[1 : h - 1, -1]])
    return float(reach.mean())


def band_background(rgb: np.ndarray, border: np.ndarray, needed: float) -> np.ndarray | None:
    """Background pixels by the band method: coloured like the framing band's palette (or a
    blend of two of its colours) and connected to the border. None when a bound from the
    frame's strips (_frame_bound) says they cannot cover `needed` of the frame (the border but
    the bottom edge, where a bust is cut off): most tries fail, and this tells most of those
    apart before the whole picture is looked at."""
    palette = _framing_palette(rgb)
    if _frame_bound(rgb, palette) < needed:
        return None
    coloured = _coloured(rgb, palette)
    n, labels = cv2.connectedComponents(coloured.astype(np.uint8), connectivity=8)
    touching = np.zeros(n, bool)
    touching[labels[border & coloured]] = True
    touching[0] = False
    background = touching[labels]
    # one-pixel lines that survive between stripes (JPEG colour blur) are not the subject
    subject = cv2.morphologyEx((~background).astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3)))
    return subject == 0
