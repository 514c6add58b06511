"""Foreground masks for character art, without any downloaded model.

Scraped character art mostly sits on a flat, gradient or simply patterned background. The image
is split into "smooth regions" (connected pixels whose neighbours differ little); the regions
that make up the background are found from the picture's border, then the thin band of edge
pixels between background and subject is decided by un-mixing each pixel's colour between the
nearby background and subject colours. That un-mixing also gives a soft alpha, so the subject
can be put on white without a halo of the old background.

Fine patterns (stripes a few pixels wide, dense dots) leave no smooth regions to work with, and
a background colour may never reach the top edge (horizontal stripes). When that first method
leaves much unexplained, a second one (method "band") tries the background as a small palette:
the recurring colours of the band that frames the subject (top edge, upper sides), plus the
blends between any two of them (anti-aliased pattern edges); background is what has those
colours and connects to the border. It replaces the first result only when it explains the
whole frame cleanly, which a cluttered scene does not.

The result says how well the picture separated (share of the border explained by background,
clutter left over); the inspector turns that into the `not_separable` decision.

This module runs the stages; the methods live beside it: segment_regions.py (smooth regions),
segment_band.py (the framing band's palette) and segment_alpha.py (un-mixing and cleaning,
shared by both).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from heroforge.data.segment_alpha import agree, clean_mask, unmix
from heroforge.data.segment_band import band_background
from heroforge.data.segment_regions import background_regions, split_leaks

EDGE_STEP = 10  # neighbour difference (max over RGB) above which a pixel sits on an edge
TRY_BAND_BELOW = 0.9  # separability under which the band method gets a try
FRAME_EXPLAINED = 0.97  # share of the frame a clean background explains


@dataclass
class Segmentation:
    alpha: np.ndarray  # H x W float32 in [0, 1]: how much of each pixel is subject
    mask: np.ndarray  # H x W bool: alpha >= 0.5, cleaned
    # H x W x 3 float32: the local background colour at partly covered pixels, 0 elsewhere
    # (None: alpha from the file)
    background: np.ndarray | None
    smooth: np.ndarray  # H x W bool: pixels inside flat-coloured regions (not on an edge)
    method: str  # "alpha", "flat" (plain/gradient), "palette" (patterned), "band" (fine
    # pattern, by the framing band's palette) or "none" (failed)
    border_explained: float  # share of the border that is background (1 = all of it)
    clutter: float  # subject-coloured specks left outside the subject, as a share of its area
    fragments: int  # significant pieces the foreground fell into

    @property
    def separability(self) -> float:
        """How well the background was explained, 1 = cleanly, 0 = hopeless: border coverage,
        minus leftover clutter and the subject falling into many pieces."""
        frag_penalty = 0.1 * max(0, self.fragments - 1)
        if self.border_explained >= 0.95 and self.clutter < 0.05:
            frag_penalty = 0.0  # a clean background: several pieces are the subject's own parts
        return float(np.clip(self.border_explained - 2 * self.clutter - frag_penalty, 0, 1))


def channel_max(img: np.ndarray) -> np.ndarray:
    """Max over the colour channels (3x faster than .max(axis=2) on interleaved pixels)."""
    return np.maximum(np.maximum(img[..., 0], img[..., 1]), img[..., 2])


def _edges(rgb: np.ndarray) -> np.ndarray:
    """Max colour step to the right/down neighbour, given to both pixels of each pair."""
    img = cv2.medianBlur(rgb, 3)  # JPEG noise must not break flat areas
    dx = channel_max(cv2.absdiff(img[:, 1:], img[:, :-1]))
    dy = channel_max(cv2.absdiff(img[1:, :], img[:-1, :]))
    step = np.zeros(rgb.shape[:2], np.uint8)
    step[:, 1:] = np.maximum(step[:, 1:], dx)
    step[:, :-1] = np.maximum(step[:, :-1], dx)
    step[1:, :] = np.maximum(step[1:, :], dy)
    step[:-1, :] = np.maximum(step[:-1, :], dy)
    return step


def _border(h: int, w: int) -> np.ndarray:
    border = np.zeros((h, w), bool)
    border[0, :] = border[-1, :] = border[:, 0] = border[:, -1] = True
    return border


def _separate(
    rgb: np.ndarray,
    bg_core: np.ndarray,
    fg_core: np.ndarray,
    border: np.ndarray,
    smooth: np.ndarray,
    method: str,
) -> Segmentation:
    """Soft alpha from the background and subject cores, cleaned, with its quality figures."""
    soft, local = unmix(rgb, bg_core, fg_core)
    mask, clutter, fragments = clean_mask(soft >= 0.5)
    soft = agree(soft, mask)
    partial = np.flatnonzero((soft > 0) & (soft < 1))
    bg_col = np.zeros(rgb.shape, np.float32)
    bg_col.reshape(-1, 3)[partial] = local.mean_at(partial)
    explained = float(bg_core[border].mean())
    return Segmentation(soft, mask, bg_col, smooth, method, explained, clutter, fragments)


def segment(rgb: np.ndarray, alpha: np.ndarray | None = None) -> Segmentation:
    """Separate the subject of an H x W x 3 uint8 picture from its background."""
    h, w = rgb.shape[:2]
    border = _border(h, w)
    smooth = _edges(rgb) <= EDGE_STEP
    if alpha is not None:
        soft = alpha.astype(np.float32) / 255.0
        mask, clutter, fragments = clean_mask(soft >= 0.5)
        soft = agree(soft, mask)
        explained = float((soft[border] < 0.5).mean())
        return Segmentation(soft, mask, None, smooth, "alpha", explained, clutter, fragments)
    _, labels, stats, centroids = cv2.connectedComponentsWithStats(
        smooth.astype(np.uint8), connectivity=4
    )
    area = stats[:, cv2.CC_STAT_AREA]
    labels, area, centroids = split_leaks(rgb, labels, area, centroids)
    is_bg, method = background_regions(rgb, labels, area, centroids, border)
    is_bg[0] = False
    bg_core = is_bg[labels]
    regions = _separate(rgb, bg_core, (labels > 0) & ~bg_core, border, smooth, method)
    # The band method gets a try when the regions left much of the frame (the border but
    # the bottom edge, where a bust is cut off) unexplained, and is trusted only when clean:
    # all of the frame explained, no clutter, the subject in one or two pieces. A cluttered
    # scene shares colours with its subject and fails this.
    frame = border.copy()
    frame[-1] = False
    if regions.separability >= TRY_BAND_BELOW or bg_core[frame].mean() >= FRAME_EXPLAINED:
        return regions
    background = band_background(rgb, border, FRAME_EXPLAINED)
    if background is None or background[frame].mean() < FRAME_EXPLAINED:
        return regions
    ring = np.ones((3, 3), np.uint8)  # cores one pixel clear of the boundary: un-mixed there
    bg_core = cv2.erode(background.astype(np.uint8), ring).astype(bool)
    fg_core = cv2.erode((~background).astype(np.uint8), ring).astype(bool)
    band = _separate(rgb, bg_core, fg_core, border, smooth, "band")
    clean = band.clutter < 0.02 and band.fragments <= 2
    return band if clean and band.separability > regions.separability else regions


def on_white(rgb: np.ndarray, seg: Segmentation) -> np.ndarray:
    """The subject composited on pure white. Edge pixels are un-mixed: the old background's
    share of their colour is replaced by white, so no halo of it survives."""
    # Pure background is white exactly: its pixels need not match the local mean colour
    # (noise, the cells of a pattern). Only the partly covered pixels need arithmetic.
    opaque = seg.alpha >= 1
    out = cv2.copyTo(rgb, opaque.astype(np.uint8), np.full(rgb.shape, 255, np.uint8))
    # found once, as flat indices: each boolean index would scan the whole picture again
    part = np.flatnonzero((seg.alpha > 0) & ~opaque)
    a = seg.alpha.ravel()[part][:, None]
    px = rgb.reshape(-1, 3)[part].astype(np.float32)
    if seg.background is None:  # straight alpha from the file
        mixed = px * a + 255.0 * (1 - a)
    else:
        mixed = px + (1 - a) * (255.0 - seg.background.reshape(-1, 3)[part])
    out.reshape(-1, 3)[part] = np.clip(mixed + 0.5, 0, 255).astype(np.uint8)
    return out
