"""Near-duplicates among the kept pictures, in colour, after background removal.

A duplicate is the same picture again: re-encoded, rescaled, re-cropped or lightly
re-compressed. A recolour (another skin tone, hair or costume colour) or another character in
the same pose is not: for a GAN's training set those are different, valuable pictures.

Both are compared as `prepare` frames them: the subject alone on white, centred on its own
bounding box, so that a rescaled copy lines up with its original (one re-cropped into the
subject is placed onto it by a small search). Two signatures per picture: a 64-bit difference
hash of the grey picture (layout; cheap to compare with all others at once) picks the
candidates, and a 48 x 48 colour thumbnail with its flat-colour cells decides. A copy differs
from its original by a little everywhere (compression noise, a slight change of brightness),
a recolour by much in a few places (a face, the hair, a costume): the distance is the share of
the subject's flat cells whose colour moved by more than compression moves it.
"""

from __future__ import annotations

import base64

import cv2
import numpy as np

VIEW = 256  # side of the framed picture the signatures are taken from (any prepare.size)
SIDE = 48  # colour thumbnail side: a whole figure's face is about 5 x 5 cells
# A cell "moved" when a channel changed by more than CELL_STEP plus SPREAD_SHARE of the cell's
# own colour spread, once the brightness was matched: a cell on an edge changes with any
# sub-cell shift of a resampled copy, a flat one only with its colour. Re-compression moves
# flat cells by a few levels; the closest skin tones of an emoji family or of the synthetic
# heroes differ by 30 or more (benchmarks/prepare_duplicates.py)
CELL_STEP = 18.0
SPREAD_SHARE = 1.0
WHITE = 240  # cells with every channel above this are background (the white around the subject)
MAX_GAIN = 0.15  # a brightness change of at most this much is matched before comparing
ROUGH = 24.0  # mean colour difference (quarter thumbnails) above which pictures are not alike
# A re-cropped copy whose crop cut the subject is framed a little bigger or smaller and shifted:
# B is tried at these scales (about the centre) and shifts (in cells) onto A
SCALES = (1.0, 0.96, 1.04, 0.92, 1.08)
SHIFTS = tuple((dx, dy) for dy in (0, -1, 1, -2, 2) for dx in (0, -1, 1, -2, 2))


def dhash(framed: np.ndarray) -> str:
    """64-bit difference hash of the framed RGB picture: near-duplicates differ in a few bits."""
    grey = cv2.cvtColor(framed, cv2.COLOR_RGB2GRAY)
    small = cv2.resize(grey, (9, 8), interpolation=cv2.INTER_AREA).astype(np.int16)
    bits = (small[:, 1:] > small[:, :-1]).ravel()
    return f"{int(''.join('1' if b else '0' for b in bits), 2):016x}"


def colour_signature(framed: np.ndarray) -> str:
    """The framed RGB picture as a SIDE x SIDE colour thumbnail (area average) and the colour
    spread inside each cell (largest standard deviation of a channel), base64."""
    pixels = framed.astype(np.float32)
    mean = cv2.resize(pixels, (SIDE, SIDE), interpolation=cv2.INTER_AREA)
    square = cv2.resize(pixels * pixels, (SIDE, SIDE), interpolation=cv2.INTER_AREA)
    spread = np.sqrt(np.maximum(square - mean * mean, 0)).max(axis=2)
    cells = np.dstack([mean, spread])
    return base64.b64encode(np.clip(cells + 0.5, 0, 255).astype(np.uint8).tobytes()).decode()


def _unpack(signature: str) -> np.ndarray:
    """SIDE x SIDE x 4 float32: the mean colour and the spread of each cell."""
    data = np.frombuffer(base64.b64decode(signature), np.uint8)
    return data.reshape(SIDE, SIDE, 4).astype(np.float32)


def _placements(cells: np.ndarray) -> np.ndarray:
    """Every scale and shift of the thumbnail: white, flat cells where it has nothing."""
    centre = (SIDE - 1) / 2
    placed = []
    for scale in SCALES:
        for dx, dy in SHIFTS:
            shift = (centre * (1 - scale) + dx, centre * (1 - scale) + dy)
            warp = np.array([[scale, 0, shift[0]], [0, scale, shift[1]]])
            placed.append(
                cv2.warpAffine(cells, warp, (SIDE, SIDE), flags=cv2.INTER_LINEAR,
                               borderValue=(255, 255, 255, 0))
            )  # fmt: skip
    return np.stack(placed)


def colour_distance(a: str, b: str) -> float:
    """How much of the subject changed colour between two framed pictures: the share of the
    subject's cells whose colour moved (see CELL_STEP) after matching b's brightness to a's, at
    the placement of b that fits a best. About 0 for the same picture re-saved or re-cropped; a
    recolour moves a face, the hair or a costume."""
    ca, cb = _unpack(a), _unpack(b)
    if _rough_apart(ca[..., :3], cb[..., :3]):
        return 1.0
    placed = _placements(cb)
    colour_a, colours = ca[..., :3], placed[..., :3]
    subject = (colour_a.min(axis=2) < WHITE)[None] | (colours.min(axis=3) < WHITE)
    sa, sb = colour_a[None] * subject[..., None], colours * subject[..., None]
    # per placement and channel: the gain that takes a's colours to b's (a brightened copy)
    gain = (sa * sb).sum((1, 2)) / np.maximum((sa * sa).sum((1, 2)), 1.0)
    gain = np.clip(gain, 1 - MAX_GAIN, 1 + MAX_GAIN)[:, None, None, :]
    allowed = CELL_STEP + SPREAD_SHARE * np.maximum(ca[None, ..., 3], placed[..., 3])
    moved = (np.abs(colour_a[None] * gain - colours).max(axis=3) > allowed) & subject
    share = moved.sum((1, 2)) / np.maximum(subject.sum((1, 2)), 1)
    return float(share.min())


def _rough_apart(ca: np.ndarray, cb: np.ndarray) -> bool:
    """Whether two thumbnails differ too much even at a quarter of their resolution (blurs
    away the misplacement of a re-cropped copy) to be worth placing one on the other."""
    small = (SIDE // 4, SIDE // 4)
    qa = cv2.resize(ca, small, interpolation=cv2.INTER_AREA)
    qb = cv2.resize(cb, small, interpolation=cv2.INTER_AREA)
    return bool(np.abs(qa - qb).mean() > ROUGH)


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
        for i in near if may_duplicate else ():
            distance = colour_distance(firsts[i][1], signature)
            if distance <= max_distance and (best is None or distance < best[1]):
                best = (firsts[i][0], distance)
        if best is None:
            hashes[len(firsts)] = h
            firsts.append((source, signature))
        else:
            found[source] = (best[0], round(best[1], 4))
    return found
