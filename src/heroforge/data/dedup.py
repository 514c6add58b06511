"""Near-duplicates among the kept pictures, in colour, after background removal.

A duplicate is the same picture again: re-encoded, rescaled, re-cropped or lightly
re-compressed. A recolour (another skin tone, hair or costume colour) or another character in
the same pose is not: for a GAN's training set those are different, valuable pictures.

Both are compared as `prepare` frames them: the subject alone on white, centred on its own
bounding box. A 64-bit difference hash of the grey picture (layout; cheap to compare with all
others at once) picks the candidates; the framed picture itself (VIEW x VIEW, kept as a PNG)
decides in four steps:

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
4. the distance is the share of the common subject that moved, after removing specks.

Measured with benchmarks/prepare_duplicates.py: a 48 x 48 colour grid (the previous test)
cannot tell a re-cropped copy from a recoloured face, which covers only a few of its cells;
at 256 x 256 the face of a small full figure is about 20 px wide.
"""

from __future__ import annotations

import base64

import cv2
import numpy as np

VIEW = 256  # side of the framed picture that is compared (whatever prepare.size is)
ALIGN_SIDE = 128  # the affine fit is refined at this size (64 first): enough for a shift
MIN_FIT = 0.8  # correlation of the aligned grey pictures below which they are not alike
WHITE = 240  # a pixel with every channel above this is background (white around the subject)
MAX_GAIN = 0.1  # a brightness change of at most this much is matched before comparing
GAIN_SPREAD = 24  # ... fitted where no channel varies more than this in a 3 x 3 neighbourhood
# A pixel moved when its Lab colour is farther than STEP + EDGE_SHARE x the local colour
# spread from every pixel next to it in the other picture. JPEG 60 moves the flat inside of
# a region by 1-4; the closest skin tones of the synthetic heroes and emoji families differ
# by 10 or more (benchmarks/prepare_duplicates.py, tuned on --seed 5)
STEP = 8.0
EDGE_SHARE = 0.6
REGION_SPREAD = 12.0  # Lab spread below which a pixel is inside a flat region
MIN_REGION = 9  # pixels: smaller regions (an eye, a button) are left to the per-pixel test
ROUGH = 24.0  # mean colour difference of 12 x 12 miniatures above which pictures are not alike


def dhash(framed: np.ndarray) -> str:
    """64-bit difference hash of the framed RGB picture: near-duplicates differ in a few bits."""
    grey = cv2.cvtColor(framed, cv2.COLOR_RGB2GRAY)
    small = cv2.resize(grey, (9, 8), interpolation=cv2.INTER_AREA).astype(np.int16)
    bits = (small[:, 1:] > small[:, :-1]).ravel()
    return f"{int(''.join('1' if b else '0' for b in bits), 2):016x}"


def colour_signature(framed: np.ndarray) -> str:
    """The framed RGB picture at VIEW x VIEW as a base64 PNG (flat colours: a few kB)."""
    view = cv2.resize(framed, (VIEW, VIEW), interpolation=cv2.INTER_AREA)
    ok, png = cv2.imencode(".png", cv2.cvtColor(view, cv2.COLOR_RGB2BGR))
    if not ok:  # pragma: no cover - encoding a uint8 array in memory does not fail
        raise RuntimeError("could not encode a colour signature")
    return base64.b64encode(png.tobytes()).decode()


def _decode(signature: str) -> np.ndarray:
    """The VIEW x VIEW RGB picture of a colour signature."""
    bgr = cv2.imdecode(np.frombuffer(base64.b64decode(signature), np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:  # prepare writes them (its cache key changes with their format)
        raise ValueError("not a colour signature")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _rough_apart(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two pictures differ too much even as 12 x 12 miniatures (which blur away any
    misplacement) to be worth aligning: another character, another costume."""
    qa = cv2.resize(a, (12, 12), interpolation=cv2.INTER_AREA).astype(np.float32)
    qb = cv2.resize(b, (12, 12), interpolation=cv2.INTER_AREA).astype(np.float32)
    return bool(np.abs(qa - qb).mean() > ROUGH)


def _align(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, float] | None:
    """The affine map that places b onto a (for cv2.WARP_INVERSE_MAP, in VIEW pixels) and the
    correlation of their grey pictures there, or None when the fit (OpenCV's ECC) diverges."""

    def grey(rgb: np.ndarray, side: int) -> np.ndarray:
        small = cv2.resize(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), (side, side),
                           interpolation=cv2.INTER_AREA)  # fmt: skip
        return cv2.GaussianBlur(small, (0, 0), 1.0).astype(np.float32)

    def fit(side: int, warp: np.ndarray, steps: int) -> tuple[float, np.ndarray]:
        criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, steps, 1e-4)
        template = grey(a, side)
        everywhere = np.full(template.shape, 255, np.uint8)  # no mask (typed stubs want one)
        # gaussFiltSize 1: grey() blurred them already
        return cv2.findTransformECC(
            template, grey(b, side), warp, cv2.MOTION_AFFINE, criteria, everywhere, 1
        )

    try:  # coarse first (converges from farther away), then refined at twice the size
        _, warp = fit(ALIGN_SIDE // 2, np.eye(2, 3, dtype=np.float32), 50)
        warp[:, 2] *= 2
        correlation, warp = fit(ALIGN_SIDE, warp, 20)
    except cv2.error:  # the fit diverged: pictures this unlike are no copies
        return None
    warp[:, 2] *= VIEW / ALIGN_SIDE
    return warp, float(correlation)


def _spread(lab: np.ndarray) -> np.ndarray:
    """Per pixel: how much the colour varies in its 3 x 3 neighbourhood (an outline: a lot)."""
    k = np.ones((3, 3), np.uint8)
    d = cv2.dilate(lab, k) - cv2.erode(lab, k)
    return np.sqrt(d[..., 0] ** 2 + d[..., 1] ** 2 + d[..., 2] ** 2)


def _nearest(la: np.ndarray, lb: np.ndarray) -> np.ndarray:
    """Per pixel of la: the Lab distance to the closest colour among lb's 3 x 3 neighbours."""
    n = la.shape[0]
    pad = cv2.copyMakeBorder(lb, 1, 1, 1, 1, cv2.BORDER_REPLICATE)
    best = np.full(la.shape[:2], np.inf, np.float32)
    for dy in range(3):
        for dx in range(3):
            d = la - pad[dy : dy + n, dx : dx + n]
            np.minimum(best, d[..., 0] ** 2 + d[..., 1] ** 2 + d[..., 2] ** 2, out=best)
    return np.sqrt(best)


def _distance(a: np.ndarray, b: np.ndarray) -> float:
    """Share of the common subject whose colour moved between two framed pictures, once b is
    aligned onto a and its brightness matched: 0 for a copy, more for a recolour; 1.0 when
    they cannot be aligned."""
    if _rough_apart(a, b):
        return 1.0
    aligned = _align(a, b)
    if aligned is None or aligned[1] < MIN_FIT:
        return 1.0
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    b = cv2.warpAffine(b, aligned[0], (VIEW, VIEW), flags=flags, borderValue=(255, 255, 255))
    both = (a.min(axis=2) < WHITE) & (b.min(axis=2) < WHITE)
    if not both.any():
        return 1.0
    fa, fb = a.astype(np.float32), b.astype(np.float32)
    # the brightness gain, fitted on the inside of flat regions: a misplaced outline would
    # drag it down
    k = np.ones((3, 3), np.uint8)
    inner = both & ((cv2.dilate(a, k) - cv2.erode(a, k)).max(axis=2) < GAIN_SPREAD)
    inner &= (cv2.dilate(b, k) - cv2.erode(b, k)).max(axis=2) < GAIN_SPREAD
    pa, pb = (fa[inner], fb[inner]) if inner.sum() >= MIN_REGION else (fa[both], fb[both])
    gain = np.clip((pa * pb).sum() / max(float((pa * pa).sum()), 1.0), 1 - MAX_GAIN, 1 + MAX_GAIN)
    la = cv2.cvtColor(np.clip(fa * gain, 0, 255) / 255, cv2.COLOR_RGB2Lab)
    lb = cv2.cvtColor(fb / 255, cv2.COLOR_RGB2Lab)
    off = np.maximum(_nearest(la, lb), _nearest(lb, la))
    spread = np.maximum(_spread(la), _spread(lb))
    moved = (off > STEP + EDGE_SHARE * spread) & both
    # specks of one pixel are resampling; a recoloured region is at least 2 x 2
    moved = cv2.morphologyEx(moved.view(np.uint8), cv2.MORPH_OPEN, np.ones((2, 2), np.uint8))
    return float((moved.view(bool) | _moved_regions(la, lb, both)).sum() / both.sum())


def _moved_regions(la: np.ndarray, lb: np.ndarray, both: np.ndarray) -> np.ndarray:
    """The flat regions of a (outlines part them) whose median colour moved by more than
    STEP: a small face is all near outlines, where single pixels get a wide tolerance, but
    the median of its pixels keeps the skin tone through JPEG noise."""
    flat = (np.maximum(_spread(la), _spread(lb)) < REGION_SPREAD) & both
    count, labels = cv2.connectedComponents(flat.view(np.uint8), connectivity=4)
    d = la - lb
    off = np.sqrt(d[..., 0] ** 2 + d[..., 1] ** 2 + d[..., 2] ** 2)
    inside = labels.ravel() > 0
    region, values = labels.ravel()[inside], off.ravel()[inside]
    order = np.lexsort((values, region))
    region, values = region[order], values[order]
    starts = np.searchsorted(region, np.arange(1, count))
    sizes = np.diff(np.append(starts, len(region)))
    medians = values[np.minimum(starts + sizes // 2, len(values) - 1)]
    moved = np.zeros(count, bool)
    moved[1:] = (sizes >= MIN_REGION) & (medians > STEP)
    return moved[labels] & flat


def colour_distance(a: str, b: str) -> float:
    """How much of the subject changed colour between two colour signatures (see _distance)."""
    return _distance(_decode(a), _decode(b))


def find_duplicates(
    pictures: list[tuple[str, str, str, bool]], max_bits: int, max_distance: float
) -> dict[str, tuple[str, float]]:
    """{source: (the source it duplicates, colour distance)} over pictures given as (source,
    dhash, colour signature, may be a duplicate), best first: each picture is compared with
    the earlier ones that were not duplicates themselves, and names the closest one within
    max_bits of hash and max_distance of colour (unless it may not be a duplicate: a person
    said to include it)."""
    found: dict[str, tuple[str, float]] = {}
    firsts: list[tuple[str, str]] = []  # (source, signature) of the pictures kept so far
    hashes = np.zeros(len(pictures), np.uint64)  # their hashes, in the first len(firsts)
    for source, hash_hex, signature, may_duplicate in pictures:
        h = np.uint64(int(hash_hex, 16))
        near = np.flatnonzero(np.bitwise_count(hashes[: len(firsts)] ^ h) <= max_bits)
        best: tuple[str, float] | None = None
        picture = _decode(signature) if may_duplicate and len(near) else np.empty(0)
        for i in near if may_duplicate else ():
            distance = _distance(_decode(firsts[i][1]), picture)
            if distance <= max_distance and (best is None or distance < best[1]):
                best = (firsts[i][0], distance)
        if best is None:
            hashes[len(firsts)] = h
            firsts.append((source, signature))
        else:
            found[source] = (best[0], round(best[1], 4))
    return found
