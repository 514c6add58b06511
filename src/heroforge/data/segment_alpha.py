"""Soft alpha from the background and subject "cores" a segmentation method found.

Both methods of segment.py end with the same stages: pixels surely background and surely
subject are known, and the thin band between them is un-mixed (each pixel's colour placed
between the nearby background and subject colours), then the mask is cleaned of specks and
small holes and the alpha made to agree with it.
"""

from __future__ import annotations

import cv2
import numpy as np

REACH = 3  # pixels around an edge pixel whose colours it is un-mixed between


class LocalMeans:
    """Sums of the masked pixels' colours, and their counts, over boxes of the picture, from
    integral images: one pass over the picture, then four lookups per box. The boxes asked
    for are few: those around the pixels between background and subject (a few percent of
    the picture), or the cells of a coarse grid."""

    def __init__(self, rgb: np.ndarray, mask: np.ndarray) -> None:
        self.h, self.w = mask.shape
        keep = mask.view(np.uint8)
        # int32 sums hold 8.4 M pixels of 255; anything bigger sums in float64
        depth = cv2.CV_32S if mask.size * 255 < 2**31 else cv2.CV_64F
        self.colour = cv2.integral(cv2.bitwise_and(rgb, rgb, mask=keep), sdepth=depth)
        self.colour = self.colour.reshape(-1, 3)
        self.count = cv2.integral(keep, sdepth=depth).ravel()

    def _sums(self, table: np.ndarray, flat: np.ndarray) -> np.ndarray:
        y, x = np.divmod(flat, self.w)
        stride = self.w + 1  # the tables have one more row and column than the picture
        y0, y1 = np.maximum(y - REACH, 0) * stride, np.minimum(y + REACH + 1, self.h) * stride
        x0, x1 = np.maximum(x - REACH, 0), np.minimum(x + REACH + 1, self.w)
        return table[y1 + x1] - table[y0 + x1] - table[y1 + x0] + table[y0 + x0]

    def mean_at(self, flat: np.ndarray) -> np.ndarray:
        """N x 3 float32 mean colour around each flat pixel index (0 where there is none)."""
        total = self._sums(self.colour, flat).astype(np.float32)
        count = np.maximum(self._sums(self.count, flat), 1).astype(np.float32)
        return total / count[:, None]


def unmix(
    rgb: np.ndarray, bg_core: np.ndarray, fg_core: np.ndarray
) -> tuple[np.ndarray, LocalMeans]:
    """Alpha of every pixel: 1 in subject regions, 0 in background, and for edge pixels the
    position of their colour between the local background and subject colours. Also returns
    the local background colours, for compositing the partly covered pixels."""
    reach = np.ones((2 * REACH + 1, 2 * REACH + 1), np.uint8)
    near_bg = cv2.dilate(bg_core.view(np.uint8), reach).view(bool)
    near_fg = cv2.dilate(fg_core.view(np.uint8), reach).view(bool)
    alpha = fg_core.astype(np.float32)
    edge = np.flatnonzero(~(bg_core | fg_core))
    near_bg, near_fg = near_bg.ravel()[edge], near_fg.ravel()[edge]
    alpha.flat[edge[~near_bg]] = 1.0  # edges deep inside the subject (between its parts)
    both = edge[near_bg & near_fg]  # the band between background and subject: un-mix it
    background = LocalMeans(rgb, bg_core)
    b, f = background.mean_at(both), LocalMeans(rgb, fg_core).mean_at(both)
    diff = f - b
    px = rgb.reshape(-1, 3)[both].astype(np.float32)
    t = ((px - b) * diff).sum(1) / np.maximum((diff**2).sum(1), 1.0)
    alpha.flat[both] = np.clip(t, 0, 1)
    return alpha, background


def _run_starts(flat: np.ndarray) -> np.ndarray:
    """Where each run of one label starts in the flattened labels. Regions lie in a few runs
    per row: counting per run, then per label, spares np.bincount from adding into the same
    counter pixel after pixel, which takes it 3-4 times longer (measured on the synthetic set)."""
    return np.flatnonzero(np.r_[True, flat[1:] != flat[:-1]])


def label_areas(labels: np.ndarray, n: int) -> np.ndarray:
    """Pixels per label of a connected-components labelling with n labels (OpenCV's
    connectedComponentsWithStats takes three times as long as the labelling alone: it also
    sums centroids and boxes, and only the areas are of use here)."""
    flat = labels.ravel()
    starts = _run_starts(flat)
    return np.bincount(flat[starts], np.diff(starts, append=flat.size), n).astype(np.int64)


def label_sums(labels: np.ndarray, n: int, values: np.ndarray) -> np.ndarray:
    """n x C sums of the H x W x C whole-number values over each label's pixels (float64,
    exact)."""
    flat = labels.ravel()
    starts = _run_starts(flat)
    runs = np.add.reduceat(values.reshape(flat.size, -1), starts, axis=0, dtype=np.int64)
    owner = flat[starts]
    return np.stack([np.bincount(owner, column, n) for column in runs.T.astype(np.float64)], 1)


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """mask (bool) with every hole filled: what the outside, 4-connected around the picture's
    border, cannot reach."""
    padded = np.pad(mask.astype(np.uint8), 1)
    outside = np.zeros((padded.shape[0] + 2, padded.shape[1] + 2), np.uint8)
    cv2.floodFill(padded, outside, (0, 0), 2)
    return padded[1:-1, 1:-1] != 2


def clean_mask(mask: np.ndarray) -> tuple[np.ndarray, float, int]:
    """Keep the subject (largest piece and pieces of comparable size), fill small holes."""
    n, labels = cv2.connectedComponents(mask.view(np.uint8), connectivity=8)
    if n <= 1:
        return mask, 0.0, 0
    areas = label_areas(labels, n)[1:]
    keep = np.zeros(n, bool)
    keep[1:] = areas >= 0.05 * areas.max()
    kept = keep[labels]
    subject = max(1, areas[keep[1:]].sum())
    dropped = areas[~keep[1:]]
    # clutter: dropped pieces of some size; the dots of a pattern and JPEG specks do not count
    clutter = float(dropped[dropped >= 0.003 * subject].sum() / subject)
    # Holes lie inside the subject's box: anything outside it reaches the picture's border.
    # Labelled in the box and one pixel around it, where that pixel ring (or the picture's
    # border) stands for the outside.
    x, y, w, h = cv2.boundingRect(kept.view(np.uint8))
    box = np.s_[max(0, y - 1) : y + h + 1, max(0, x - 1) : x + w + 1]
    holes = (~kept[box]).view(np.uint8)
    count, hlabels = cv2.connectedComponents(holes, connectivity=4)
    border_labels = np.unique(
        np.concatenate([hlabels[0], hlabels[-1], hlabels[:, 0], hlabels[:, -1]])
    )
    small = label_areas(hlabels, count) < 0.002 * kept.sum()
    small[border_labels] = False
    small[0] = False
    kept[box] |= small[hlabels]
    return kept, clutter, int(keep.sum())


def agree(soft: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Alpha consistent with the cleaned mask: soft edges only in a one-pixel ring around it,
    so removed specks vanish completely instead of leaving faint ghosts."""
    ring = cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool) & ~mask
    return np.where(mask, np.maximum(soft, 0.5), np.where(ring, np.minimum(soft, 0.49), 0.0))
