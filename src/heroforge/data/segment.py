"""Foreground masks for character art, without any downloaded model.

Scraped character art mostly sits on a flat, gradient or simply patterned background. The image
is split into "smooth regions" (connected pixels whose neighbours differ little); the regions
that make up the background are found from the picture's border, then the thin band of edge
pixels between background and subject is decided by un-mixing each pixel's colour between the
nearby background and subject colours. That un-mixing also gives a soft alpha, so the subject
can be put on white without a halo of the old background.

The result says how well the picture separated (share of the border explained by background,
clutter left over); the inspector turns that into the `not_separable` decision.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

EDGE_STEP = 10  # neighbour difference (max over RGB) above which a pixel sits on an edge
MATCH_TOL = 22.0  # colour distance at which a region still counts as background-coloured
ENCLOSED_BG_SHARE = 0.015  # enclosed background-coloured holes bigger than this (of the subject)


@dataclass
class Segmentation:
    alpha: np.ndarray  # H x W float32 in [0, 1]: how much of each pixel is subject
    mask: np.ndarray  # H x W bool: alpha >= 0.5, cleaned
    background: np.ndarray | None  # H x W x 3 float32 local background colour (None: alpha input)
    smooth: np.ndarray  # H x W bool: pixels inside flat-coloured regions (not on an edge)
    method: str  # "alpha", "flat" (plain/gradient), "palette" (patterned) or "none" (failed)
    border_explained: float  # share of the border that is background (1 = all of it)
    clutter: float  # subject-coloured specks left outside the subject, as a share of its area
    fragments: int  # significant pieces the foreground fell into


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


def _field(rgb: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Local mean colour of the weighted pixels within 3 pixels (normalised box filter) and
    the share of such pixels there."""
    w = weight.astype(np.float32)
    wsum = cv2.blur(w, (7, 7))
    col = cv2.blur(rgb.astype(np.float32) * w[..., None], (7, 7))
    return col / np.maximum(wsum, 1e-6)[..., None], wsum


def _coarse_field(rgb: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Background colour everywhere: averaged on a coarse grid, holes filled by diffusion."""
    h, w = weight.shape
    gh, gw = max(2, h // 24), max(2, w // 24)
    wt = cv2.resize(weight.astype(np.float32), (gw, gh), interpolation=cv2.INTER_AREA)
    col = cv2.resize(
        rgb.astype(np.float32) * weight[..., None], (gw, gh), interpolation=cv2.INTER_AREA
    )
    have = wt > 0.05
    grid = np.where(have[..., None], col / np.maximum(wt, 1e-6)[..., None], 0)
    for _ in range(max(gh, gw)):  # spread known cells into unknown ones
        if have.all():
            break
        num = cv2.blur(grid * have[..., None], (3, 3))
        den = cv2.blur(have.astype(np.float32), (3, 3))
        fill = ~have & (den > 0)
        grid[fill] = num[fill] / den[fill][:, None]
        have = have | fill
    return cv2.resize(grid, (w, h), interpolation=cv2.INTER_LINEAR)


def _region_stats(
    labels: np.ndarray, n: int, rgb: np.ndarray, border: np.ndarray, area: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Mean colour of each region and how many border pixels it owns."""
    flat = labels.ravel()
    mean = (
        np.stack(
            [np.bincount(flat, rgb[..., c].ravel().astype(np.float64), n) for c in range(3)], 1
        )
        / np.maximum(area, 1)[:, None]
    )
    on_border = np.bincount(labels[border], minlength=n).astype(np.float64)
    return mean, on_border


def _top_palette(labels: np.ndarray, mean: np.ndarray, n: int) -> np.ndarray:
    """Colours of the regions along the top edge, each owning >= 10% of it.

    Characters are framed with headroom, so the top edge shows the background: every colour of
    a patterned background (stripes, checks, rays, dots) appears there, the subject's rarely.
    """
    top = labels[0][labels[0] > 0]
    if top.size == 0:
        return np.zeros((0, 3))
    share = np.bincount(top, minlength=n) / labels.shape[1]
    colours: list[np.ndarray] = []
    weights: list[float] = []
    for lab in np.flatnonzero(share):
        for i, c in enumerate(colours):
            if np.linalg.norm(mean[lab] - c) < MATCH_TOL:
                weights[i] += share[lab]
                break
        else:
            colours.append(mean[lab])
            weights.append(share[lab])
    return np.array([c for c, w in zip(colours, weights, strict=True) if w >= 0.1]).reshape(-1, 3)


def _adjacency(labels: np.ndarray, n: int, reach: int = 3) -> dict[int, list[int]]:
    """Regions that face each other across an edge band at most `reach` pixels wide."""
    keys = []
    for d in range(1, reach + 1):
        for a, b in ((labels[:, :-d], labels[:, d:]), (labels[:-d, :], labels[d:, :])):
            pair = (a != b) & (a > 0) & (b > 0)
            lo, hi = np.minimum(a[pair], b[pair]), np.maximum(a[pair], b[pair])
            keys.append(lo.astype(np.int64) * n + hi)
    neighbours: dict[int, list[int]] = {}
    for key in np.unique(np.concatenate(keys)):
        lo, hi = divmod(int(key), n)
        neighbours.setdefault(lo, []).append(hi)
        neighbours.setdefault(hi, []).append(lo)
    return neighbours


def _quadratic_model(rgb: np.ndarray, weight: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Background colour at `points` (y, x) from a quadratic fit to the background pixels:
    extends a gradient to background pockets that the subject cut off from the rest."""
    h, w = weight.shape
    ys, xs = np.nonzero(weight[::4, ::4])  # a sparse grid is plenty for six coefficients
    ys, xs = ys * 4, xs * 4
    step = max(1, ys.size // 4000)
    ys, xs = ys[::step], xs[::step]

    def basis(y: np.ndarray, x: np.ndarray) -> np.ndarray:
        y, x = y / h, x / w
        return np.stack([np.ones_like(y), y, x, y * y, x * x, x * y], 1)

    coef, *_ = np.linalg.lstsq(basis(ys, xs), rgb[ys, xs].astype(np.float64), rcond=None)
    return basis(points[:, 0].astype(float), points[:, 1].astype(float)) @ coef


def _background_regions(
    rgb: np.ndarray,
    labels: np.ndarray,
    stats: np.ndarray,
    centroids: np.ndarray,
    border: np.ndarray,
) -> tuple[np.ndarray, str]:
    """Which smooth regions are background: returns a bool per region label and the method."""
    n = len(stats)
    area = stats[:, cv2.CC_STAT_AREA].astype(np.float64)
    mean, on_border = _region_stats(labels, n, rgb, border, area)
    on_border[0] = 0  # label 0 = edge pixels, not a region
    main = int(np.argmax(on_border))
    flat = on_border[main] / border.sum() >= 0.2
    palette = _top_palette(labels, mean, n)
    is_bg = np.zeros(n, bool)
    is_bg[main] = flat
    near_palette = np.zeros(n, bool)
    if len(palette):
        near_palette = np.linalg.norm(mean[:, None] - palette[None], axis=2).min(1) < MATCH_TOL
    is_bg |= near_palette & (on_border > 0)
    is_bg[0] = False
    if not is_bg.any():
        return is_bg, "none"
    field = _coarse_field(rgb, is_bg[labels])
    h, w = labels.shape
    centre = np.stack([centroids[:, 1].clip(0, h - 1), centroids[:, 0].clip(0, w - 1)], 1)
    centre = centre.astype(np.int64)
    near_field = np.linalg.norm(mean - field[centre[:, 0], centre[:, 1]], axis=1) < MATCH_TOL
    model = _quadratic_model(rgb, is_bg[labels], centre)
    near_field |= np.linalg.norm(mean - model, axis=1) < MATCH_TOL
    bg_coloured = near_field | near_palette
    bg_coloured[0] = False
    # Background-coloured regions join when they touch the border, lie next to background
    # across a thin edge (the cells of a pattern), or are large holes (between arm and body).
    # Small enclosed ones, such as white eyes on a white background, stay subject.
    subject_area = max(1.0, area[1:][~is_bg[1:]].sum())
    is_bg |= bg_coloured & (
        (on_border > 0) | (near_field & (area >= ENCLOSED_BG_SHARE * subject_area))
    )
    neighbours = _adjacency(labels, n)
    frontier = list(np.flatnonzero(is_bg))
    while frontier:  # breadth-first through background-coloured neighbours
        lab = frontier.pop()
        for other in neighbours.get(lab, ()):
            if bg_coloured[other] and not is_bg[other]:
                is_bg[other] = True
                frontier.append(other)
    return is_bg, "flat" if flat else "palette"


def _unmix(
    rgb: np.ndarray, bg_core: np.ndarray, fg_core: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Alpha of every pixel: 1 in subject regions, 0 in background, and for edge pixels the
    position of their colour between the local background and subject colours."""
    bg_col, bg_w = _field(rgb, bg_core)
    fg_col, fg_w = _field(rgb, fg_core)
    alpha = fg_core.astype(np.float32)
    edge = ~bg_core & ~fg_core
    near_bg, near_fg = edge & (bg_w >= 0.02), edge & (fg_w >= 0.02)
    alpha[edge & ~near_bg] = 1.0  # edges deep inside the subject (between its parts)
    both = near_bg & near_fg  # the band between background and subject: un-mix it
    b, f = bg_col[both], fg_col[both]
    diff = f - b
    t = ((rgb[both].astype(np.float32) - b) * diff).sum(1) / np.maximum((diff**2).sum(1), 1.0)
    alpha[both] = np.clip(t, 0, 1)
    return alpha, bg_col


def _clean(mask: np.ndarray) -> tuple[np.ndarray, float, int]:
    """Keep the subject (largest piece and pieces of comparable size), fill small holes."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if n <= 1:
        return mask, 0.0, 0
    areas = stats[1:, cv2.CC_STAT_AREA]
    keep = np.zeros(n, bool)
    keep[1:] = areas >= 0.05 * areas.max()
    kept = keep[labels]
    subject = max(1, areas[keep[1:]].sum())
    dropped = areas[~keep[1:]]
    # clutter: dropped pieces of some size; the dots of a pattern and JPEG specks do not count
    clutter = float(dropped[dropped >= 0.003 * subject].sum() / subject)
    holes = (~kept).astype(np.uint8)
    _, hlabels, hstats, _ = cv2.connectedComponentsWithStats(holes, connectivity=4)
    border_labels = np.unique(
        np.concatenate([hlabels[0], hlabels[-1], hlabels[:, 0], hlabels[:, -1]])
    )
    small = hstats[:, cv2.CC_STAT_AREA] < 0.002 * kept.sum()
    small[border_labels] = False
    small[0] = False
    return kept | small[hlabels], clutter, int(keep.sum())


def _agree(soft: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Alpha consistent with the cleaned mask: soft edges only in a one-pixel ring around it,
    so removed specks vanish completely instead of leaving faint ghosts."""
    ring = cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool) & ~mask
    return np.where(mask, np.maximum(soft, 0.5), np.where(ring, np.minimum(soft, 0.49), 0.0))


def segment(rgb: np.ndarray, alpha: np.ndarray | None = None) -> Segmentation:
    """Separate the subject of an H x W x 3 uint8 picture from its background."""
    h, w = rgb.shape[:2]
    border = _border(h, w)
    if alpha is not None:
        soft = alpha.astype(np.float32) / 255.0
        mask, clutter, fragments = _clean(soft >= 0.5)
        soft = _agree(soft, mask)
        explained = float((soft[border] < 0.5).mean())
        smooth = _edges(rgb) <= EDGE_STEP
        return Segmentation(soft, mask, None, smooth, "alpha", explained, clutter, fragments)
    smooth = _edges(rgb) <= EDGE_STEP
    _, labels, stats, centroids = cv2.connectedComponentsWithStats(
        smooth.astype(np.uint8), connectivity=4
    )
    is_bg, method = _background_regions(rgb, labels, stats, centroids, border)
    is_bg[0] = False
    bg_core = is_bg[labels]
    fg_core = (labels > 0) & ~bg_core
    soft, bg_col = _unmix(rgb, bg_core, fg_core)
    mask, clutter, fragments = _clean(soft >= 0.5)
    soft = _agree(soft, mask)
    explained = float(bg_core[border].mean())
    return Segmentation(soft, mask, bg_col, smooth, method, explained, clutter, fragments)


def on_white(rgb: np.ndarray, seg: Segmentation) -> np.ndarray:
    """The subject composited on pure white. Edge pixels are un-mixed: the old background's
    share of their colour is replaced by white, so no halo of it survives."""
    a = seg.alpha[..., None]
    if seg.background is None:  # straight alpha from the file
        out = rgb.astype(np.float32) * a + 255.0 * (1 - a)
    else:
        out = rgb.astype(np.float32) + (1 - a) * (255.0 - seg.background)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)
