"""Near-duplicates, in colour, after background removal.

A duplicate is the same picture again: re-encoded, rescaled, re-cropped or lightly
re-compressed. A recolour (another skin tone, hair or costume colour) or another character in
the same pose is not: for a GAN's training set those are different, valuable pictures.

Both are compared as `prepare` frames them: the subject alone on white, centred on its own
bounding box. A 64-bit difference hash of the grey picture (layout; cheap to compare with all
others at once) picks the candidates, 12 x 12 miniatures drop the plainly different ones (more
strictly between two pictures that are both excluded for reasons of their own: most pairs of a
scraped folder, and comparing them all took 20-30 times as long); the framed picture itself
(dedup_compare.VIEW x VIEW, kept as a PNG) decides: dedup_compare.py says how two pictures are
compared.

A copy whose subject was cut out differently frames differently; it is aligned again by the
same square before background removal (its "context"). When the later picture's subject could
not be cut out cleanly (not separable: a figure lost in a busy scene), the cut-outs are no
guide at all, and the two squares themselves are compared, background and all, by their flat
regions only.
"""

from __future__ import annotations

import base64
import functools
from concurrent.futures import Executor
from dataclasses import dataclass

import cv2
import numpy as np

from heroforge.data import dedup_compare

# a square with its background is busy: as a PNG it took 52 kB on average (the Noto set), as a
# JPEG 95 23 kB. It is compared by its flat regions' colours, which JPEG 95 nearly keeps (a
# small figure's hair recoloured: 0.16% of the square moved, 0.17-0.23% from a PNG; at JPEG
# 90 0.15%, and its recoloured face, 0.05% at best, vanished)
CONTEXT_FORMAT = (".jpg", [cv2.IMWRITE_JPEG_QUALITY, 95])


def dhash(framed: np.ndarray) -> str:
    """64-bit difference hash of the framed RGB picture: near-duplicates differ in a few bits."""
    grey = cv2.cvtColor(framed, cv2.COLOR_RGB2GRAY)
    small = cv2.resize(grey, (9, 8), interpolation=cv2.INTER_AREA).astype(np.int16)
    bits = (small[:, 1:] > small[:, :-1]).ravel()
    return f"{int(''.join('1' if b else '0' for b in bits), 2):016x}"


def colour_signature(framed: np.ndarray) -> str:
    """The framed RGB picture at VIEW x VIEW as a base64 PNG (flat colours: a few kB)."""
    return _encode(framed)


def context_signature(framed_with_background: np.ndarray) -> str:
    """The same square cut of the picture before background removal, at VIEW x VIEW as a
    base64 JPEG: what a copy whose subject was cut out differently is aligned by, and what two
    pictures whose subjects could not be cut out cleanly are compared by."""
    return _encode(framed_with_background, CONTEXT_FORMAT)


def _encode(rgb: np.ndarray, how: tuple[str, list[int]] = (".png", [])) -> str:
    """rgb at dedup_compare.VIEW x VIEW, encoded as how says (extension, OpenCV flags), base64."""
    side = dedup_compare.VIEW
    view = cv2.resize(rgb, (side, side), interpolation=cv2.INTER_AREA)
    ok, png = cv2.imencode(how[0], cv2.cvtColor(view, cv2.COLOR_RGB2BGR), how[1])
    if not ok:  # pragma: no cover - encoding a uint8 array in memory does not fail
        raise RuntimeError("could not encode a signature")
    return base64.b64encode(png.tobytes()).decode()


def _decode(signature: str) -> np.ndarray:
    """The VIEW x VIEW RGB picture of a colour or context signature."""
    picture = cv2.imdecode(np.frombuffer(base64.b64decode(signature), np.uint8), cv2.IMREAD_COLOR)
    if picture is None:  # prepare writes them (its cache key changes with their format)
        raise ValueError("not a signature")
    return cv2.cvtColor(picture, cv2.COLOR_BGR2RGB)


def colour_distance(a: str, b: str, limit: float) -> float:
    """How much of the subject changed colour between two colour signatures, as find_duplicates
    measures it against limit (see dedup_compare.distance; 1.0 for pictures that differ by more
    than ROUGH as miniatures)."""
    va, vb = _decode(a), _decode(b)
    if (
        dedup_compare.rough_difference(dedup_compare.miniature(va), dedup_compare.miniature(vb))
        > dedup_compare.ROUGH
    ):
        return 1.0
    return dedup_compare.distance(va, vb, limit)


@dataclass(frozen=True)
class Picture:
    """One picture as find_duplicates compares it (the fields of prepare's record)."""

    source: str
    hash: str  # dhash of the framed subject
    whole_hash: str  # dhash of the whole picture, background and all
    signature: str  # colour_signature of the framed subject
    context: str  # context_signature: the same square before background removal
    may_duplicate: bool = True  # False: a person's word keeps it out of any group
    kept: bool = True  # kept on its own merits (before duplicates are looked for)
    cut_clean: bool = True  # its subject stands out from its background (separable)


@dataclass(frozen=True)
class _Seen:
    """A picture as the comparison sees it: the framed view, its context (colour, and grey for
    the affine fit), their miniatures (grey for the context) and whether its cut-out holds."""

    view: np.ndarray
    context: np.ndarray
    context_grey: np.ndarray
    view_miniature: np.ndarray
    context_miniature: np.ndarray
    cut_clean: bool


def _seen(picture: Picture) -> _Seen:
    view, context = _decode(picture.signature), _decode(picture.context)
    grey = dedup_compare.grey(context)
    return _Seen(
        view,
        context,
        grey,
        dedup_compare.miniature(view),
        dedup_compare.miniature(grey),
        picture.cut_clean,
    )


def _pair_distance(
    a: _Seen, b: _Seen, near: bool, by_background: bool, rough: float, limit: float
) -> float:
    """Colour distance of b from the earlier picture a: aligned by the cut-outs when their
    hashes are near, else (or when that finds them apart) by their backgrounds, if
    by_background; either way only when the two miniatures differ by at most rough.

    Aligned by their backgrounds (the same squares before background removal), a copy whose
    subject was cut out differently (a wedge of background kept, a hand lost) lines up again,
    and the part of the cut-outs both hold is compared: it must be most of the smaller one.
    When b's cut-out cannot be trusted (a subject lost in a busy scene), the squares
    themselves are compared in colour, background and all: a copy's background moved with
    it, a recolour's subject changed colour on the same background. That comparison sees
    less (only regions at least 3 px thick: a small figure's recoloured face can pass for a
    copy), but then b is excluded for a reason of its own whatever it is called."""
    distance = 1.0
    if near and dedup_compare.rough_difference(a.view_miniature, b.view_miniature) <= rough:
        distance = dedup_compare.distance(a.view, b.view, limit)
    if (
        distance <= limit
        or not by_background
        or dedup_compare.rough_difference(a.context_miniature, b.context_miniature) > rough
    ):
        return distance
    aligned = dedup_compare.align(a.context_grey, b.context_grey)
    if aligned is None or aligned[1] < dedup_compare.MIN_FIT:
        return distance
    warp = aligned[0]
    distance = min(
        distance, dedup_compare.refined_share(a.view, b.view, warp, dedup_compare.MIN_SHARED, limit)
    )
    if distance > limit and not b.cut_clean:
        distance = min(distance, dedup_compare.context_share(a.context, b.context, warp))
    return distance


@dataclass(frozen=True)
class _Candidate:
    """An earlier picture a later one is compared with, and how (see _pair_distance)."""

    index: int
    near: bool  # the framed subjects' hashes are near, not only the whole pictures'
    by_background: bool
    rough: float


def _candidates(pictures: list[Picture], max_bits: int) -> list[tuple[int, list[_Candidate]]]:
    """(picture, its candidates) for every picture that may be a duplicate and has some:
    every earlier picture within max_bits of either hash. Cheap: all hashes at once."""
    hashes = np.array([int(p.hash, 16) for p in pictures], np.uint64)
    wholes = np.array([int(p.whole_hash, 16) for p in pictures], np.uint64)
    work = []
    for i, picture in enumerate(pictures):
        near = np.bitwise_count(hashes[:i] ^ hashes[i]) <= max_bits
        whole_near = np.bitwise_count(wholes[:i] ^ wholes[i]) <= max_bits
        earlier = np.flatnonzero(near | whole_near).tolist()
        if not (picture.may_duplicate and earlier):
            continue
        candidates = []
        for j in earlier:
            other = pictures[j]
            # a cut-out that may hold its background is no guide to whether the backgrounds
            # are worth comparing
            cut_clean = other.cut_clean and picture.cut_clean
            by_background = bool(whole_near[j]) or (other.kept and picture.kept) or not cut_clean
            # two excluded pictures whose whole pictures look alike may be framed apart (each
            # subject cut out differently): their miniatures then differ (by 19 for a copy
            # on a busy background)
            rough = (
                dedup_compare.ROUGH
                if other.kept or picture.kept or whole_near[j]
                else dedup_compare.ROUGH_EXCLUDED
            )
            candidates.append(_Candidate(j, bool(near[j]), by_background, rough))
        work.append((i, candidates))
    return work


@dataclass(frozen=True)
class _Batch:
    """Some of the pictures to check, with every picture their comparisons need (by index):
    what one worker process is sent."""

    work: list[tuple[int, list[_Candidate]]]
    pictures: dict[int, Picture]
    max_distance: float


def _batches(
    pictures: list[Picture], work: list[tuple[int, list[_Candidate]]], parts: int, limit: float
) -> list[_Batch]:
    """work cut into at most parts runs of about as many comparisons each."""
    total = sum(len(candidates) for _, candidates in work)
    batches: list[_Batch] = []
    run: list[tuple[int, list[_Candidate]]] = []
    size = 0
    for item in work:
        run.append(item)
        size += len(item[1])
        if size * parts >= total * (len(batches) + 1):
            needed = {i for i, _ in run} | {c.index for _, cs in run for c in cs}
            batches.append(_Batch(run, {i: pictures[i] for i in needed}, limit))
            run = []
    return batches


def _closest(batch: _Batch) -> dict[str, tuple[str, float]]:
    """find_duplicates for one batch: {source: (closest earlier picture, colour distance)}."""
    # a picture meets each of its candidates: decoding its signatures once per pair cost a
    # fifth of the comparison; the most recent few hundred are kept
    seen = functools.lru_cache(maxsize=512)(lambda i: _seen(batch.pictures[i]))
    found: dict[str, tuple[str, float]] = {}
    for i, candidates in batch.work:
        # (distance, miniature difference, source): of two as close, the one closer as a
        # miniature; a small JPEG copy can lose a recolour's few pixels of difference and
        # measure 0 to the recolour as to its original
        best: tuple[float, float, str] | None = None
        for c in candidates:
            pair = (seen(c.index), seen(i), c.near, c.by_background, c.rough, batch.max_distance)
            distance = _pair_distance(*pair)
            if distance > batch.max_distance:
                continue
            likeness = dedup_compare.rough_difference(
                seen(c.index).view_miniature, seen(i).view_miniature
            )
            if best is None or (distance, likeness) < best[:2]:
                best = (distance, likeness, batch.pictures[c.index].source)
        if best is not None:
            found[batch.pictures[i].source] = (best[2], round(best[0], 4))
    return found


def find_duplicates(
    pictures: list[Picture],
    max_bits: int,
    max_distance: float,
    pool: Executor | None = None,
    parts: int = 1,
) -> dict[str, tuple[str, float]]:
    """{source: (the source it duplicates, colour distance)} over pictures biggest first: each
    picture is compared with every earlier one within max_bits of either hash (the framed
    subject's, or the whole picture's: a copy cut out differently frames differently),
    duplicates too (a rescaled copy may be closer to the JPEG copy of its original than to the
    original itself), and names the closest one within max_distance of colour, unless it may
    not be a duplicate. A name that is a duplicate itself leads on to the picture heading the
    group.

    Each picture's answer depends on the pictures alone, not on other answers: with a pool,
    the comparisons run in `parts` batches across its processes (on a 300-picture set they
    took 2 s, all after the per-picture work)."""
    work = _candidates(pictures, max_bits)
    if not work:
        return {}
    batches = _batches(pictures, work, parts if pool else 1, max_distance)
    found: dict[str, tuple[str, float]] = {}
    for part in (pool.map if pool else map)(_closest, batches):
        found.update(part)
    return found
