"""Background as smooth regions (method "flat" or "palette"): which of the picture's flat-coloured
regions are background, found from the border.

The main region along the border is the background when it owns enough of it (plain and
gradient backgrounds); the colours along the top edge are a patterned background's palette.
Regions coloured like the background nearby (a coarse field of its colour, or a quadratic fit
that carries a gradient into pockets the subject cut off) join it when they touch the border,
are large holes, or face background across a thin edge.
"""

from __future__ import annotations

import cv2
import numpy as np

from heroforge.data.segment_alpha import LocalMeans, label_areas, label_sums

MATCH_TOL = 22.0  # colour distance at which a region still counts as background-coloured
ENCLOSED_BG_SHARE = 0.015  # enclosed background-coloured holes bigger than this (of the subject)
LEAK_SHARE = 0.0005  # of the picture: smaller parts of the background region off its model stay
FRAME_FIT = 0.9  # share of the upper frame a smooth background's colour model explains


def _coarse_field(rgb: np.ndarray, weight: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Background colour at `points` (y, x): averaged on a coarse grid (cells of about 24
    pixels, summed from integral images), holes filled by diffusion, read bilinearly."""
    h, w = weight.shape
    gh, gw = max(2, h // 24), max(2, w // 24)
    local = LocalMeans(rgb, weight)
    rows = np.linspace(0, h, gh + 1).round().astype(np.int64)
    cols = np.linspace(0, w, gw + 1).round().astype(np.int64)
    corner = rows[:, None] * (w + 1) + cols[None, :]  # cell corners' flat index in the tables

    def cells(table: np.ndarray) -> np.ndarray:
        at = table[corner]
        return at[1:, 1:] - at[:-1, 1:] - at[1:, :-1] + at[:-1, :-1]

    count = cells(local.count).astype(np.float64)
    area = np.outer(np.diff(rows), np.diff(cols))
    have = count > 0.05 * area
    grid = np.where(have[..., None], cells(local.colour) / np.maximum(count, 1)[..., None], 0)
    grid = grid.astype(np.float32)
    for _ in range(max(gh, gw)):  # spread known cells into unknown ones
        if have.all():
            break
        num = cv2.blur(grid * have[..., None], (3, 3))
        den = cv2.blur(have.astype(np.float32), (3, 3))
        fill = ~have & (den > 0)
        grid[fill] = num[fill] / den[fill][:, None]
        have = have | fill
    # bilinear between cell centres, clamped at the outer half cells
    gy = np.clip((points[:, 0] + 0.5) * gh / h - 0.5, 0, gh - 1)
    gx = np.clip((points[:, 1] + 0.5) * gw / w - 0.5, 0, gw - 1)
    y0, x0 = np.minimum(gy.astype(np.int64), gh - 2), np.minimum(gx.astype(np.int64), gw - 2)
    fy, fx = (gy - y0)[:, None], (gx - x0)[:, None]
    top = grid[y0, x0] * (1 - fx) + grid[y0, x0 + 1] * fx
    bottom = grid[y0 + 1, x0] * (1 - fx) + grid[y0 + 1, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


def _region_stats(
    labels: np.ndarray, n: int, rgb: np.ndarray, border: np.ndarray, area: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Mean colour of each region and how many border pixels it owns."""
    mean = label_sums(labels, n, rgb) / np.maximum(area, 1)[:, None]
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
    """Regions that face each other across an edge band at most `reach` (>= 2) pixels wide.

    The labels must be 4-connected components (as segment() makes them): two different ones
    then never touch directly, so distance 1 is not looked at.
    """
    keys = []
    for d in range(2, reach + 1):
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
    coef = _least_squares(_quadratic_basis(ys / h, xs / w), rgb[ys, xs].astype(np.float64))
    return _quadratic_basis(points[:, 0] / h, points[:, 1] / w) @ coef


def background_regions(
    rgb: np.ndarray,
    labels: np.ndarray,
    area: np.ndarray,
    centroids: np.ndarray,
    border: np.ndarray,
) -> tuple[np.ndarray, str]:
    """Which smooth regions are background: returns a bool per region label and the method."""
    n = len(area)
    area = area.astype(np.float64)
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
    h, w = labels.shape
    centre = np.stack([centroids[:, 1].clip(0, h - 1), centroids[:, 0].clip(0, w - 1)], 1)
    centre = np.nan_to_num(centre).astype(np.int64)  # a label left without pixels has none
    field = _coarse_field(rgb, is_bg[labels], centre)
    near_field = np.linalg.norm(mean - field, axis=1) < MATCH_TOL
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
    frontier: list[int] = np.flatnonzero(is_bg).tolist()
    while frontier:  # breadth-first through background-coloured neighbours
        lab = frontier.pop()
        for other in neighbours.get(lab, ()):
            if bg_coloured[other] and not is_bg[other]:
                is_bg[other] = True
                frontier.append(other)
    return is_bg, "flat" if flat else "palette"


def _frame_fit(rgb: np.ndarray, region: np.ndarray) -> tuple[np.ndarray, float]:
    """The region's colour as a quadratic in (y, x), H x W x 3 float32, fitted robustly: first
    to its pixels in the frame of the picture (where the background shows), then refitted
    twice to the pixels it already explains, so that subject pixels in the region drop out.
    Also returns the share of the region's pixels in the upper frame that the model explains."""
    h, w = region.shape
    ys, xs = np.nonzero(region[::4, ::4])
    step = max(1, ys.size // 2000)  # plenty for six coefficients
    ys, xs = ys[::step] * 4, xs[::step] * 4
    colours = rgb[ys, xs].astype(np.float64)
    basis = _quadratic_basis(ys / h, xs / w)
    deep = max(8, min(h, w) // 16)
    frame = (ys < deep) | (ys >= h - deep) | (xs < deep) | (xs >= w - deep)
    use = frame
    for _ in range(3):
        if use.sum() < 12:
            use = np.ones(ys.size, bool)
        coef = _least_squares(basis[use], colours[use])
        use = np.linalg.norm(basis @ coef - colours, axis=1) < MATCH_TOL
    gy, gx = np.mgrid[0:h:4, 0:w:4]
    coarse = _quadratic_basis(gy.ravel() / h, gx.ravel() / w) @ coef
    coarse = coarse.reshape(*gy.shape, 3).astype(np.float32)
    # judged where a subject seldom reaches: the top and the upper sides (a bust fills the
    # bottom edge, and what leaked in with it is not explained by the model)
    upper = frame & (ys < 0.6 * h)
    explained = float(use[upper].mean()) if upper.any() else 0.0
    return cv2.resize(coarse, (w, h), interpolation=cv2.INTER_LINEAR), explained


def _quadratic_basis(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The six terms of a quadratic in (y, x), both scaled to 0..1, for N points."""
    return np.stack([np.ones_like(y), y, x, y * y, x * x, x * y], 1)


def _least_squares(basis: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Coefficients by the normal equations: a 6 x 6 solve, many times cheaper than lstsq on
    thousands of samples (the basis is well conditioned on 0..1 coordinates)."""
    return np.linalg.solve(basis.T @ basis + 1e-9 * np.eye(basis.shape[1]), basis.T @ values)


def split_leaks(
    rgb: np.ndarray, labels: np.ndarray, area: np.ndarray, centroids: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cut the subject out of the background region it leaked into.

    Soft shading (Noto's hair, a background whose gradient passes through the subject's colour
    somewhere along its outline) lets a smooth region run from the background into the subject
    in steps too small to be an edge. The background itself follows a smooth colour model, the
    subject does not: sizeable parts of the border's largest region that the model does not
    explain become regions of their own. Returns the labels, areas and centroids with them.
    A textured background (clouds, noise) is no such model: nothing is cut when the model
    leaves much of the upper frame unexplained.
    """
    h, w = labels.shape
    border_labels = np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
    on_border = np.bincount(border_labels, minlength=len(area))
    on_border[0] = 0
    main = int(np.argmax(on_border))
    if main == 0:
        return labels, area, centroids
    region = labels == main
    model, explained = _frame_fit(rgb, region)
    if explained < FRAME_FIT:
        return labels, area, centroids
    diff = cv2.subtract(cv2.blur(rgb, (3, 3)).astype(np.float32), model)
    squared = cv2.transform(cv2.multiply(diff, diff), np.ones((1, 3), np.float32))
    leaked = region & (squared >= MATCH_TOL**2)
    if np.count_nonzero(leaked) < LEAK_SHARE * h * w:  # no part of it can be big enough
        return labels, area, centroids
    n, parts = cv2.connectedComponents(leaked.view(np.uint8), connectivity=4)
    part_area = label_areas(parts, n)
    big = np.flatnonzero(part_area >= LEAK_SHARE * h * w)
    big = big[big > 0]
    if big.size == 0:
        return labels, area, centroids
    labels = labels.copy()
    new = np.zeros(n, np.int32)
    new[big] = len(area) + np.arange(big.size)
    cut = new[parts]
    labels[cut > 0] = cut[cut > 0]
    area = np.concatenate([area, part_area[big]])
    area[main] -= part_area[big].sum()
    return labels, area, np.concatenate([centroids, _centroids(parts, n)[big]])


def _centroids(labels: np.ndarray, n: int) -> np.ndarray:
    """n x 2 (x, y) mean position of each label's pixels, as OpenCV's connected components
    with stats give them (exact sums of whole numbers, divided by the area)."""
    ys, xs = np.nonzero(labels)
    found = labels[ys, xs]
    count = np.maximum(np.bincount(found, minlength=n), 1)
    sums = np.stack([np.bincount(found, xs, n), np.bincount(found, ys, n)], 1)
    return sums / count[:, None]
