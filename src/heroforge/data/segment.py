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
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

REACH = 3  # pixels around an edge pixel whose colours it is un-mixed between
EDGE_STEP = 10  # neighbour difference (max over RGB) above which a pixel sits on an edge
MATCH_TOL = 22.0  # colour distance at which a region still counts as background-coloured
ENCLOSED_BG_SHARE = 0.015  # enclosed background-coloured holes bigger than this (of the subject)
PALETTE_SIZE = 6  # colours sought in the framing band by the band method
PALETTE_MIN_SHARE = 0.03  # of the band: smaller clusters are the subject's or noise
PATTERN_RUNS = 4  # separate stretches of the frame in which a pattern colour shows
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


class _LocalMeans:
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


def _coarse_field(rgb: np.ndarray, weight: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Background colour at `points` (y, x): averaged on a coarse grid (cells of about 24
    pixels, summed from integral images), holes filled by diffusion, read bilinearly."""
    h, w = weight.shape
    gh, gw = max(2, h // 24), max(2, w // 24)
    local = _LocalMeans(rgb, weight)
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
    h, w = labels.shape
    centre = np.stack([centroids[:, 1].clip(0, h - 1), centroids[:, 0].clip(0, w - 1)], 1)
    centre = centre.astype(np.int64)
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


def _unmix(
    rgb: np.ndarray, bg_core: np.ndarray, fg_core: np.ndarray
) -> tuple[np.ndarray, _LocalMeans]:
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
    background = _LocalMeans(rgb, bg_core)
    b, f = background.mean_at(both), _LocalMeans(rgb, fg_core).mean_at(both)
    diff = f - b
    px = rgb.reshape(-1, 3)[both].astype(np.float32)
    t = ((px - b) * diff).sum(1) / np.maximum((diff**2).sum(1), 1.0)
    alpha.flat[both] = np.clip(t, 0, 1)
    return alpha, background


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
    band = band[:: max(1, len(band) // 20000)]
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


def _band_background(rgb: np.ndarray, border: np.ndarray) -> np.ndarray:
    """Background pixels by the band method: coloured like the framing band's palette (or a
    blend of two of its colours) and connected to the border."""
    # decided once per colour present, at 6 bits per channel (a 1.5-level error at most)
    q = (rgb >> 2).astype(np.int32)
    codes = (q[..., 0] << 12) | (q[..., 1] << 6) | q[..., 2]
    present = np.flatnonzero(np.bincount(codes.ravel(), minlength=1 << 18))
    levels = np.stack([present >> 12, (present >> 6) & 63, present & 63], 1)
    lookup = np.zeros(1 << 18, bool)
    lookup[present] = _near_palette(levels.astype(np.float32) * 4 + 1.5, _framing_palette(rgb))
    coloured = lookup[codes]
    n, labels = cv2.connectedComponents(coloured.astype(np.uint8), connectivity=8)
    touching = np.zeros(n, bool)
    touching[labels[border & coloured]] = True
    touching[0] = False
    background = touching[labels]
    # one-pixel lines that survive between stripes (JPEG colour blur) are not the subject
    subject = cv2.morphologyEx((~background).astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3)))
    return subject == 0


def _separate(
    rgb: np.ndarray,
    bg_core: np.ndarray,
    fg_core: np.ndarray,
    border: np.ndarray,
    smooth: np.ndarray,
    method: str,
) -> Segmentation:
    """Soft alpha from the background and subject cores, cleaned, with its quality figures."""
    soft, local = _unmix(rgb, bg_core, fg_core)
    mask, clutter, fragments = _clean(soft >= 0.5)
    soft = _agree(soft, mask)
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
        mask, clutter, fragments = _clean(soft >= 0.5)
        soft = _agree(soft, mask)
        explained = float((soft[border] < 0.5).mean())
        return Segmentation(soft, mask, None, smooth, "alpha", explained, clutter, fragments)
    _, labels, stats, centroids = cv2.connectedComponentsWithStats(
        smooth.astype(np.uint8), connectivity=4
    )
    is_bg, method = _background_regions(rgb, labels, stats, centroids, border)
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
    background = _band_background(rgb, border)
    if background[frame].mean() < FRAME_EXPLAINED:
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
    part = (seg.alpha > 0) & ~opaque
    a = seg.alpha[part][:, None]
    px = rgb[part].astype(np.float32)
    if seg.background is None:  # straight alpha from the file
        mixed = px * a + 255.0 * (1 - a)
    else:
        mixed = px + (1 - a) * (255.0 - seg.background[part])
    out[part] = np.clip(mixed + 0.5, 0, 255).astype(np.uint8)
    return out
