"""How two framed pictures are compared: whether one is a near-duplicate of the other (see
dedup.py for what a duplicate is and which pairs are compared).

The framed picture (VIEW x VIEW, kept as a PNG) decides in four steps:

1. align: the candidate is placed onto the earlier picture by an affine fit of their grey
   pictures (OpenCV's ECC), so a copy re-cropped into the subject or framed a little
   differently (a segmentation that kept a sliver of background) lines up again;
2. compare colour per pixel in Lab, where both have the subject, after matching brightness;
   a pixel "moved" when no pixel next to it in the other picture has its colour. Resampling
   and JPEG move colours only along outlines (handled by the neighbourhood and by a tolerance
   that grows with the local colour spread); a recolour moves whole flat regions: a face, the
   hair, a costume;
3. a flat region (outlines part them) whose median colour moved counts as moved as a whole:
   a small figure's face is all near outlines, but its median keeps the skin tone through
   JPEG noise;
4. the distance is the share of the common subject that moved, after removing specks, with
   any part drawn in one picture only (a bun: see DRAWN_PART).

Measured with benchmarks/prepare_duplicates.py: a 48 x 48 colour grid (the previous test)
cannot tell a re-cropped copy from a recoloured face, which covers only a few of its cells;
at 256 x 256 the face of a small full figure is about 20 px wide.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from heroforge.data.segment_alpha import fill_holes

VIEW = 256  # side of the framed picture that is compared (whatever prepare.size is)
ALIGN_SIDE = 128  # the affine fit is refined at this size (64 first): enough for a shift
REFIT_STEPS = 30  # ... and at VIEW, when only outlines moved (see refined_share)
REFIT_CLEAN = 0.25  # share of the duplicate limit a copy must fall to after that refit
MIN_FIT = 0.8  # correlation of the aligned grey pictures below which they are not alike
MIN_SHARED = 0.8  # aligned by their backgrounds: the share of the smaller cut both must hold
WHITE = 240  # a pixel with every channel above this is background (white around the subject)
MAX_GAIN = 0.1  # a brightness change of at most this much is matched before comparing
GAIN_SPREAD = 24  # ... fitted where no channel varies more than this in a 3 x 3 neighbourhood
GAIN_DARK, GAIN_BRIGHT = 40, 235  # ... on regions whose channels average between these
GAIN_REGIONS = 3  # ... as their median when there are this many (see _gain)
# A pixel moved when its Lab colour is farther than STEP + EDGE_SHARE x the local colour
# spread from every pixel next to it in the other picture. JPEG 60 moves the flat inside of
# a region by 1-4; the closest skin tones of the synthetic heroes and emoji families differ
# by 10 or more (benchmarks/prepare_duplicates.py, tuned on --seed 5)
STEP = 8.0
EDGE_SHARE = 0.6
REGION_SPREAD = 12.0  # Lab spread below which a pixel is inside a flat region
MIN_REGION = 9  # pixels: smaller regions (an eye, a button) are left to the per-pixel test
# Compared by their own outlines, a part drawn in one picture and not the other moves as a whole
# (a bun, a ponytail, hair at the sides: a woman beside a man in the same pose, OpenMoji). Such
# a part is at least 3 pixels thick and DRAWN_PART of the common subject, outside the other's
# outline (a pocket of background that one copy's cut-out kept lies inside it), clearly coloured
# (not PALE: a light wing, a shadow, a candle's wick are where cut-outs of one drawing on two
# backgrounds differ), off the bottom edge, and not cut off by a straight end of the other (a
# copy re-cropped into its subject). Realart benchmarks: OpenMoji's wrong duplicate calls
# 16 -> 5 (the 5 left are drawn alike to a pixel); the same copies found in every family
DRAWN_PART = 0.01
PALE = 160  # every channel at least this
INSET = 4  # a straight end is as wide at its outermost two pixels as this far inside ...
STRAIGHT = 0.8  # ... to this share (a round end, the top of a head, narrows)
ROUGH = 24.0  # mean colour difference of 12 x 12 miniatures above which pictures are not alike
ROUGH_EXCLUDED = 8.0  # ... of two pictures both excluded on their own (copies: 0.2-9)


def miniature(picture: np.ndarray) -> np.ndarray:
    """12 x 12, which blurs away any misplacement: two pictures whose miniatures differ by more
    than ROUGH on average are not worth aligning (another character, another costume)."""
    return cv2.resize(picture, (12, 12), interpolation=cv2.INTER_AREA).astype(np.float32)


def rough_difference(a: np.ndarray, b: np.ndarray) -> float:
    """Mean colour difference of two miniatures."""
    return float(np.abs(a - b).mean())


def grey(rgb: np.ndarray) -> np.ndarray:
    """The grey picture the affine fit works on, ALIGN_SIDE x ALIGN_SIDE."""
    picture = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    return cv2.resize(picture, (ALIGN_SIDE, ALIGN_SIDE), interpolation=cv2.INTER_AREA)


def _blurred(grey: np.ndarray) -> np.ndarray:
    """A grey picture as the ECC fit compares it."""
    return cv2.GaussianBlur(grey, (0, 0), 1.0).astype(np.float32)


def _fit(
    template: np.ndarray, moving: np.ndarray, warp: np.ndarray, steps: int, motion: int,
    eps: float,
) -> tuple[float, np.ndarray]:  # fmt: skip
    """OpenCV's ECC fit of moving onto template (both _blurred), from warp: (correlation,
    warp); raises cv2.error when it diverges."""
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, steps, eps)
    everywhere = np.full(template.shape, 255, np.uint8)  # no mask (typed stubs want one)
    # gaussFiltSize 1: _blurred did it
    return cv2.findTransformECC(template, moving, warp, motion, criteria, everywhere, 1)


def align(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, float] | None:
    """The affine map that places grey picture b onto a (both ALIGN_SIDE; the map is for
    cv2.WARP_INVERSE_MAP in VIEW pixels) and the correlation of the two there, or None when the
    fit (OpenCV's ECC) diverges."""

    def fit(side: int, warp: np.ndarray, steps: int, motion: int) -> tuple[float, np.ndarray]:
        small_a, small_b = (
            cv2.resize(g, (side, side), interpolation=cv2.INTER_AREA) for g in (a, b)
        )
        return _fit(_blurred(small_a), _blurred(small_b), warp, steps, motion, 1e-4)

    # coarse first (converges from farther away), then refined at twice the size. A shift
    # comes first: from no shift at all, an affine fit of pictures of a busy background that
    # frame one subject 10% apart wanders off into a shear (benchmarks/prepare_duplicates.py)
    coarse = ALIGN_SIDE // 2
    try:
        _, warp = fit(coarse, np.eye(2, 3, dtype=np.float32), 50, cv2.MOTION_TRANSLATION)
        _, warp = fit(coarse, warp, 50, cv2.MOTION_AFFINE)
        warp[:, 2] *= 2
        correlation, warp = fit(ALIGN_SIDE, warp, 20, cv2.MOTION_AFFINE)
    except cv2.error:  # the fit diverged: pictures this unlike are no copies
        return None
    warp[:, 2] *= VIEW / ALIGN_SIDE
    return warp, float(correlation)


def _channel_min(picture: np.ndarray) -> np.ndarray:
    """Per pixel, the smallest of its three channels (numpy's min over a last axis of 3 is
    many times slower than two element-wise minima)."""
    return np.minimum(np.minimum(picture[..., 0], picture[..., 1]), picture[..., 2])


def _channel_max(picture: np.ndarray) -> np.ndarray:
    return np.maximum(np.maximum(picture[..., 0], picture[..., 1]), picture[..., 2])


def _norm(d: np.ndarray) -> np.ndarray:
    """Per pixel, the length of a difference of Lab colours."""
    return np.sqrt(d[..., 0] ** 2 + d[..., 1] ** 2 + d[..., 2] ** 2)


def _spread(lab: np.ndarray) -> np.ndarray:
    """Per pixel: how much the colour varies in its 3 x 3 neighbourhood (an outline: a lot)."""
    k = np.ones((3, 3), np.uint8)
    return _norm(cv2.dilate(lab, k) - cv2.erode(lab, k))


def _thick(part: np.ndarray) -> np.ndarray:
    """The pixels of part (bool) that lie in pieces at least 3 pixels thick: resampling and
    JPEG shift an outline by a pixel or two, a drawn part is thicker."""
    return cv2.morphologyEx(part.view(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))


def _nearest_at(la: np.ndarray, lb: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """At the pixels (ys, xs) of la: the Lab distance to the closest colour among lb's 3 x 3
    neighbours (the picture's edge repeated beyond it)."""
    n = la.shape[0]
    best = np.full(len(ys), np.inf, np.float32)
    here = la[ys, xs]
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            d = here - lb[np.clip(ys + dy, 0, n - 1), np.clip(xs + dx, 0, n - 1)]
            np.minimum(best, d[..., 0] ** 2 + d[..., 1] ** 2 + d[..., 2] ** 2, out=best)
    return np.sqrt(best)


def distance(a: np.ndarray, b: np.ndarray, limit: float) -> float:
    """Share of the common subject whose colour moved between two framed pictures, once b is
    aligned onto a by their own outlines: 0 for a copy, more for a recolour; 1.0 when they
    cannot be aligned. A share above limit may come back smaller, still above limit."""
    aligned = align(grey(a), grey(b))
    if aligned is None or aligned[1] < MIN_FIT:
        return 1.0
    return refined_share(a, b, aligned[0], 0.0, limit, shapes=True)


def refined_share(
    a: np.ndarray, b: np.ndarray, warp: np.ndarray, min_shared: float, limit: float,
    shapes: bool = False,
) -> float:  # fmt: skip
    """moved_share, and again with the fit refined on the full views when only outlines moved
    above limit: a copy framed at another scale (re-cropped into its subject) lines up to a
    pixel or two at ALIGN_SIDE, which moves its outlines beyond their neighbourhood (up to 7%
    of it, benchmarks/prepare_duplicates.py); a recolour's own regions moved, so it is not
    refitted. A refit copy's outlines are all in place, so its share must fall to REFIT_CLEAN
    of limit: a face recoloured on a small figure, a few pixels near outlines, can fall to
    about limit once its outlines are in place."""
    share, regions_moved = moved_share(a, b, warp, min_shared, limit, shapes)
    if share <= limit or regions_moved:
        return share
    refitted = moved_share(a, b, _refit(a, b, warp), min_shared, limit, shapes)[0]
    return refitted if refitted <= REFIT_CLEAN * limit else share


def _refit(a: np.ndarray, b: np.ndarray, warp: np.ndarray) -> np.ndarray:
    """warp refined by an affine fit of the full-size pictures (unchanged if that diverges)."""
    grey_a, grey_b = (_blurred(cv2.cvtColor(x, cv2.COLOR_RGB2GRAY)) for x in (a, b))
    try:
        return _fit(grey_a, grey_b, warp.copy(), REFIT_STEPS, cv2.MOTION_AFFINE, 1e-5)[1]
    except cv2.error:
        return warp


def context_share(a: np.ndarray, b: np.ndarray, warp: np.ndarray) -> float:
    """Share of two squares before background removal (see dedup.context_signature), b placed
    onto a by warp and refitted, held by flat regions whose colour moved; 1.0 when they overlap
    too little. Only regions count: on a busy background, resampling and JPEG move outlines
    everywhere (1-2% of the square for real-art copies, benchmarks/prepare_realart.py),
    while a recolour moves whole regions (0.5-22% of the square for the recolours of
    benchmarks/prepare_duplicates.py). A region under 3 pixels thick is a sliver between
    outlines whose colour the rescaling of a copy blends (up to 0.23% of the square in those
    copies, 0.07% with them left out), not a recoloured area."""
    overlay = _overlay(a, b, _refit(a, b, warp), MIN_SHARED)
    if overlay is None:
        return 1.0
    moved = _moved_regions(overlay.direct, overlay.spread, overlay.both)
    return np.count_nonzero(_thick(moved)) / overlay.shared


@dataclass(frozen=True)
class _Overlay:
    """Two pictures, one warped onto the other, as Lab colours where both hold something."""

    la: np.ndarray
    lb: np.ndarray
    in_a: np.ndarray  # where a has its subject (is not white)
    in_b: np.ndarray
    clear_a: np.ndarray  # where a is not PALE
    clear_b: np.ndarray
    both: np.ndarray  # where both have a subject
    shared: int  # pixels of both
    direct: np.ndarray  # per pixel, the colour difference
    spread: np.ndarray  # per pixel, the larger colour spread of the two (see _spread)


def _overlay(a: np.ndarray, b: np.ndarray, warp: np.ndarray, min_shared: float) -> _Overlay | None:
    """b warped onto a, its brightness matched, in Lab; None when they share less than
    min_shared of the smaller subject."""
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    b = cv2.warpAffine(b, warp, a.shape[1::-1], flags=flags, borderValue=(255, 255, 255))
    min_a, min_b = _channel_min(a), _channel_min(b)
    in_a, in_b = min_a < WHITE, min_b < WHITE
    both = in_a & in_b
    shared = int(np.count_nonzero(both))
    if not shared or shared < min_shared * min(np.count_nonzero(in_a), np.count_nonzero(in_b)):
        return None
    fa, fb = a.astype(np.float32), b.astype(np.float32)
    # the brightness gain, fitted on the inside of flat regions: a misplaced outline would
    # drag it down
    k = np.ones((3, 3), np.uint8)
    inner = both & (_channel_max(cv2.dilate(a, k) - cv2.erode(a, k)) < GAIN_SPREAD)
    inner &= _channel_max(cv2.dilate(b, k) - cv2.erode(b, k)) < GAIN_SPREAD
    gain = np.float32(np.clip(_gain(fa, fb, inner, both), 1 - MAX_GAIN, 1 + MAX_GAIN))
    la = cv2.cvtColor(np.clip(fa * gain, 0, 255) / 255, cv2.COLOR_RGB2Lab)
    lb = cv2.cvtColor(fb / 255, cv2.COLOR_RGB2Lab)
    spread = np.maximum(_spread(la), _spread(lb))
    clear_a, clear_b = min_a < PALE, min_b < PALE
    return _Overlay(la, lb, in_a, in_b, clear_a, clear_b, both, shared, _norm(la - lb), spread)


def _gain(fa: np.ndarray, fb: np.ndarray, inner: np.ndarray, both: np.ndarray) -> float:
    """The brightness gain that takes a to b: the median of the flat regions' own gains (those
    neither dark nor near white, where a gain is measurable), or one fitted on all their pixels
    when there are fewer than GAIN_REGIONS. A brightened copy moves every region alike; a
    recolour of one region (a lighter skin) leaves the others (hair, clothes) where they were,
    and a gain fitted on all pixels, led by the biggest region, would move them instead:
    Fluent's two lightest skin tones, 8.5 apart, then measured 4.4 with the grey hair moved by
    4.7, a copy. With one or two such regions a median would follow the one that changed (a
    car's body a shade lighter)."""
    count, labels = cv2.connectedComponents(inner.view(np.uint8), connectivity=4)
    inside = labels.ravel() > 0
    region = labels.ravel()[inside]
    ab = (fa * fb).sum(axis=-1).ravel()[inside]
    aa = (fa * fa).sum(axis=-1).ravel()[inside]
    sizes = np.bincount(region, minlength=count)
    sum_ab, sum_aa = (np.bincount(region, w, minlength=count) for w in (ab, aa))
    mean = np.sqrt(sum_aa / np.maximum(3 * sizes, 1))  # the region's root mean channel value
    usable = (sizes >= MIN_REGION) & (mean > GAIN_DARK) & (mean < GAIN_BRIGHT)
    usable[0] = False
    if np.count_nonzero(usable) >= GAIN_REGIONS:
        return float(np.median(sum_ab[usable] / sum_aa[usable]))
    fitted = inner if np.count_nonzero(inner) >= MIN_REGION else both
    pa, pb = fa[fitted], fb[fitted]
    return float((pa * pb).sum() / max(float((pa * pa).sum()), 1.0))


def moved_share(
    a: np.ndarray, b: np.ndarray, warp: np.ndarray, min_shared: float, limit: float,
    shapes: bool = False,
) -> tuple[float, bool]:  # fmt: skip
    """Share of the subject both hold whose colour moved, b warped onto a and its brightness
    matched (1.0 when they share less than min_shared of the smaller subject), and whether
    flat regions moved by more than limit (a recolour: then the share may come back as a lower
    bound of itself, enough to know that b is no copy)."""
    overlay = _overlay(a, b, warp, min_shared)
    if overlay is None:
        return 1.0, True
    both, shared, direct, spread = overlay.both, overlay.shared, overlay.direct, overlay.spread
    regions = _moved_regions(direct, spread, both)
    if np.count_nonzero(regions) > limit * shared:  # a recolour: its regions alone tell
        return np.count_nonzero(regions) / shared, True
    # a pixel moved when no pixel next to it in the other picture has its colour, so only
    # pixels whose own counterpart is too far need their neighbours looked at
    tolerance = STEP + EDGE_SHARE * spread
    ys, xs = np.nonzero((direct > tolerance) & both)
    la, lb = overlay.la, overlay.lb
    off = np.maximum(_nearest_at(la, lb, ys, xs), _nearest_at(lb, la, ys, xs))
    moved = np.zeros(both.shape, np.uint8)
    moved[ys, xs] = off > tolerance[ys, xs]
    # specks of one pixel are resampling; a recoloured region is at least 2 x 2
    opened = cv2.morphologyEx(moved, cv2.MORPH_OPEN, np.ones((2, 2), np.uint8)).view(bool)
    if shapes:  # a part drawn in one and not the other: a bun, a ponytail, hair at the sides
        opened |= _drawn_parts(overlay)
    return np.count_nonzero(opened | regions) / shared, False


def _drawn_parts(overlay: _Overlay) -> np.ndarray:
    """Where a part drawn in one picture and not in the other lies (see DRAWN_PART)."""
    found = np.zeros(overlay.both.shape, bool)
    for mine, clear, other in (
        (overlay.in_a, overlay.clear_a, overlay.in_b),
        (overlay.in_b, overlay.clear_b, overlay.in_a),
    ):
        extra = _thick(mine & clear & ~fill_holes(other))
        _, labels, stats, _ = cv2.connectedComponentsWithStats(extra, connectivity=8)
        big = np.flatnonzero(stats[1:, cv2.CC_STAT_AREA] >= DRAWN_PART * overlay.shared) + 1
        for i in big:
            # a part on the bottom edge is in a bust's cut, where a copy's cut-out kept a
            # wedge of background between arm and body
            on_bottom = stats[i, cv2.CC_STAT_TOP] + stats[i, cv2.CC_STAT_HEIGHT] == len(extra)
            if not on_bottom and not _cut_off(stats[i, :4], other):
                found |= labels == i
    return found


def _cut_off(box: np.ndarray, other: np.ndarray) -> bool:
    """Whether a part (its box: x, y, width, height) lies beyond an end of the other subject
    that is straight along it: that subject was cropped there (see INSET)."""
    px, py, pw, ph = (int(v) for v in box)
    x, y, w, h = cv2.boundingRect(other.view(np.uint8))
    inset_x, inset_y = min(INSET, w - 1), min(INSET, h - 1)
    cols, rows = slice(max(0, px - 3), px + pw + 3), slice(max(0, py - 3), py + ph + 3)
    ends = []  # (the other's outermost two lines along the part, the line inset from them)
    if py < y:
        ends.append((other[y : y + 2, cols].any(0), other[y + inset_y, cols]))
    if py + ph > y + h:
        ends.append((other[y + h - 2 : y + h, cols].any(0), other[y + h - 1 - inset_y, cols]))
    if px < x:
        ends.append((other[rows, x : x + 2].any(1), other[rows, x + inset_x]))
    if px + pw > x + w:
        ends.append((other[rows, x + w - 2 : x + w].any(1), other[rows, x + w - 1 - inset_x]))
    return any(
        np.count_nonzero(edge) >= max(3, STRAIGHT * np.count_nonzero(inner)) for edge, inner in ends
    )


def _moved_regions(direct: np.ndarray, spread: np.ndarray, both: np.ndarray) -> np.ndarray:
    """The flat regions (outlines part them) whose median colour moved by more than STEP,
    given per pixel the colour difference and the larger colour spread of the two pictures:
    a small face is all near outlines, where single pixels get a wide tolerance, but the
    median of its pixels keeps the skin tone through JPEG noise."""
    flat = (spread < REGION_SPREAD) & both
    count, labels = cv2.connectedComponents(flat.view(np.uint8), connectivity=4)
    inside = labels.ravel() > 0
    region, values = labels.ravel()[inside], direct.ravel()[inside]
    order = np.lexsort((values, region))
    region, values = region[order], values[order]
    starts = np.searchsorted(region, np.arange(1, count))
    sizes = np.diff(np.append(starts, len(region)))
    medians = values[np.minimum(starts + sizes // 2, len(values) - 1)]
    moved = np.zeros(count, bool)
    moved[1:] = (sizes >= MIN_REGION) & (medians > STEP)
    return moved[labels] & flat
