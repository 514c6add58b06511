"""The counting shortcuts of segmentation give exactly what OpenCV's connected-component
statistics and a labelling of the whole picture give (prepare's masks must not change)."""

import cv2
import numpy as np
import pytest

from heroforge.data.segment_alpha import clean_mask, label_areas, label_sums
from heroforge.data.segment_regions import _centroids


def _blobs(seed: int, shape: tuple[int, int] = (90, 130)) -> np.ndarray:
    """Random blobs of several sizes, some touching the border, with holes of all sizes."""
    noise = np.random.default_rng(seed).random(shape)
    return cv2.GaussianBlur(noise, (0, 0), 2 + seed % 4) > 0.5


def _clean_mask_whole_picture(mask: np.ndarray) -> tuple[np.ndarray, float, int]:
    """clean_mask as it was: every count from OpenCV's stats, holes sought in the whole picture."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if n <= 1:
        return mask, 0.0, 0
    areas = stats[1:, cv2.CC_STAT_AREA]
    keep = np.zeros(n, bool)
    keep[1:] = areas >= 0.05 * areas.max()
    kept = keep[labels]
    subject = max(1, areas[keep[1:]].sum())
    dropped = areas[~keep[1:]]
    clutter = float(dropped[dropped >= 0.003 * subject].sum() / subject)
    _, hlabels, hstats, _ = cv2.connectedComponentsWithStats(
        (~kept).astype(np.uint8), connectivity=4
    )
    border = np.unique(np.concatenate([hlabels[0], hlabels[-1], hlabels[:, 0], hlabels[:, -1]]))
    small = hstats[:, cv2.CC_STAT_AREA] < 0.002 * kept.sum()
    small[border] = False
    small[0] = False
    return kept | small[hlabels], clutter, int(keep.sum())


@pytest.mark.parametrize("seed", range(8))
def test_areas_sums_and_centroids_match_opencv(seed):
    n, labels, stats, centroids = cv2.connectedComponentsWithStats(
        _blobs(seed).view(np.uint8), connectivity=4
    )
    colours = np.random.default_rng(seed).integers(0, 256, (*labels.shape, 3), dtype=np.uint8)
    assert np.array_equal(label_areas(labels, n), stats[:, cv2.CC_STAT_AREA])
    flat = labels.ravel()
    expected = np.stack([np.bincount(flat, colours[..., c].ravel(), n) for c in range(3)], 1)
    assert np.array_equal(label_sums(labels, n, colours), expected)
    assert np.array_equal(_centroids(labels, n)[1:], centroids[1:])


@pytest.mark.parametrize("seed", range(12))
def test_holes_found_in_the_subjects_box_as_in_the_whole_picture(seed):
    mask = _blobs(seed)
    mask[40:50, 60:70] = True  # a subject with a one-pixel hole, well inside the picture
    mask[45, 65] = False
    got, expected = clean_mask(mask.copy()), _clean_mask_whole_picture(mask)
    assert np.array_equal(got[0], expected[0])
    assert got[1:] == expected[1:]


def test_a_hole_open_to_the_border_stays_open_and_an_enclosed_one_is_filled():
    mask = np.zeros((60, 60), bool)
    mask[10:60, 10:50] = True  # a bust on the bottom edge
    mask[25, 25] = False  # enclosed and small: filled
    mask[30:33, 45:60] = False  # a notch out of the subject's box to the right: left open
    mask[50:60, 20:23] = False  # a slot to the picture's bottom edge, inside the box: left open
    cleaned, _, pieces = clean_mask(mask.copy())
    assert pieces == 1
    assert cleaned[25, 25]
    assert not cleaned[30:33, 45:50].any()
    assert not cleaned[50:60, 20:23].any()
