"""`heroforge prepare`: raw pictures in, a reviewed set of square PNGs on white out.

Per picture (in worker processes): decode safely -> separate subject and background (again in
a cut-out of the file when the subject is small: data/closeup.py) -> score realism,
separability, human-likeness (colour and shape, plus MediaPipe's face and pose models where
those are not decisive) and body extent -> decide -> frame the subject on a white square.
Every decision lands in a record, cached by content hash + settings, so a rerun (after Ctrl-C,
or after a person edited overrides.csv) recomputes nothing already done.

Output folder:
    images/          the kept pictures (what `heroforge archive` packs)
    manifest.jsonl   one record per input: decision, reason, scores, body extent, output
    overrides.csv    a person's corrections: source,action (include|exclude|upper|full)
    review.html      contact sheet grouped by decision
    .cache/          records, framed pictures and thumbnails by content hash
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import multiprocessing
import os
import shutil
import warnings
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from heroforge.checks import require_folder, worker_count
from heroforge.config import PrepareConfig
from heroforge.data import dedup, dedup_compare, humancues
from heroforge.data.closeup import closeup
from heroforge.data.ingest import IngestLimits, Skip, Source, decode_image, list_sources
from heroforge.data.inspect import body_cut, inspect
from heroforge.data.prepare_decide import finalise
from heroforge.data.prepare_results import PictureRecord, PrepareSummary
from heroforge.data.segment import Segmentation, on_white, segment
from heroforge.data.workers import one_blas_thread, one_core_each
from heroforge.errors import UserError
from heroforge.fileio import atomic_write_bytes, atomic_write_text

PIPELINE_VERSION = "prepare/18"  # bump when processing changes, so caches are not reused
WORK_SIDE = 768  # pictures are analysed at most this big: the subject ends up <= 512 px
THUMB = 160


def settings_key(cfg: PrepareConfig) -> str:
    """What the cached analysis depends on. Thresholds and --keep are not in it: decisions are
    re-made from the cached scores on every run, so changing them recomputes nothing. The
    human cues are in it (MediaPipe or colour only, and the thresholds that decide which
    detectors run): a cache made without MediaPipe is not reused once it is there."""
    text = json.dumps([PIPELINE_VERSION, cfg.size, cfg.margin, *humancues.settings(cfg)])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def frame(picture: np.ndarray, mask: np.ndarray, cfg: PrepareConfig) -> tuple[Image.Image, float]:
    """Square crop around the subject with a margin, on white, resized to cfg.size.

    A subject cut by the bottom edge (a bust) stays flush with the bottom of the square, as in
    the source; anything else is centred. Returns the picture and the scale it needed.
    """
    h, w = mask.shape
    x0, y0, bw, bh = cv2.boundingRect(mask.view(np.uint8))
    x1, y1 = x0 + bw, y0 + bh
    side = round(max(x1 - x0, y1 - y0) / (1 - 2 * cfg.margin))
    top = y1 - side if y1 >= h else round((y0 + y1 - side) / 2)
    left = round((x0 + x1 - side) / 2)
    canvas = np.full((side, side, 3), 255, np.uint8)
    sy0, sx0 = max(0, top), max(0, left)
    sy1, sx1 = min(h, top + side), min(w, left + side)
    canvas[sy0 - top : sy1 - top, sx0 - left : sx1 - left] = picture[sy0:sy1, sx0:sx1]
    return Image.fromarray(resize_square(canvas, cfg.size)), cfg.size / side


def resize_square(img: np.ndarray, size: int) -> np.ndarray:
    """A square uint8 picture at size x size: area averaging to shrink (no aliasing), Lanczos
    to enlarge (sharpest: 0.3-0.5 dB over cubic on drawn art). Lanczos runs in float32, which
    OpenCV does 2x faster than uint8 (4 against 8-10 ms to 512 px), within one level of it."""
    if img.shape[0] == size:
        return img
    if img.shape[0] > size:
        return cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
    out = cv2.resize(img.astype(np.float32), (size, size), interpolation=cv2.INTER_LANCZOS4)
    return np.rint(np.clip(out, 0, 255, out=out), out=out).astype(np.uint8)


def _work_size(
    rgb: np.ndarray, alpha: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray | None, float]:
    h, w = rgb.shape[:2]
    factor = min(1.0, WORK_SIDE / max(h, w))
    if factor == 1.0:
        return rgb, alpha, 1.0
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    if alpha is not None:
        alpha = cv2.resize(alpha, size, interpolation=cv2.INTER_AREA)
    return rgb, alpha, factor


# Framed pictures are flat colours on white: run-length zlib after the "up" filter writes them
# 2x faster than Pillow's level 1 (adaptive filters) and 5% smaller (measured on 40 pictures).
PNG_OPTIONS = [
    cv2.IMWRITE_PNG_COMPRESSION,
    1,
    cv2.IMWRITE_PNG_STRATEGY,
    cv2.IMWRITE_PNG_STRATEGY_RLE,
    cv2.IMWRITE_PNG_FILTER,
    cv2.IMWRITE_PNG_FILTER_UP,
]


def _png(img: Image.Image) -> bytes:
    bgr = cv2.cvtColor(np.asarray(img), cv2.COLOR_RGB2BGR)
    ok, data = cv2.imencode(".png", bgr, PNG_OPTIONS)
    if not ok:
        raise OSError("PNG encoding failed")
    return data.tobytes()


def _shrink(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """img averaged down to size (width, height) in two steps: by the whole factor first, which
    OpenCV does 4-5x faster than a fractional one (a few rows and columns at the far edges, less
    than that factor, are dropped), then the rest. For thumbnails: 1 ms instead of 2-4."""
    factor = min(img.shape[0] // size[1], img.shape[1] // size[0])
    if factor >= 2:
        h, w = img.shape[0] // factor, img.shape[1] // factor
        img = cv2.resize(img[: h * factor, : w * factor], (w, h), interpolation=cv2.INTER_AREA)
    return cv2.resize(img, size, interpolation=cv2.INTER_AREA)


def _thumb(rgb: np.ndarray, seg: Segmentation | None) -> bytes:
    """Source thumbnail, with the found subject outlined in magenta for the reviewer. The
    outline is drawn after shrinking, so it stays one crisp pixel wide."""
    h, w = rgb.shape[:2]
    factor = min(1.0, THUMB / max(h, w))
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    img = _shrink(rgb, size)
    if seg is not None:
        mask = _shrink(seg.mask.view(np.uint8) * 255, size) >= 128
        inner = cv2.erode(mask.view(np.uint8), np.ones((3, 3), np.uint8)).view(bool)
        img[mask & ~inner] = (255, 0, 255)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", quality=85)
    return buf.getvalue()


def process(source: Source, cfg: PrepareConfig, cache: Path, limits: IngestLimits) -> PictureRecord:
    """Analyse one picture, write its framed output and thumbnail into the cache; return its
    record: decision "analysed" with its scores, or "error" for a bad file (never an
    exception). Decisions (thresholds, overrides, --keep, duplicates) are made over all records
    by `finalise`."""
    record: PictureRecord = {"source": source.name}
    try:
        data = source.read_bytes(limits)
        sha = hashlib.sha256(data).hexdigest()
        record["sha256"] = sha
        cached = cache / "records" / f"{sha}-{settings_key(cfg)}.json"
        if cached.exists():
            stored: PictureRecord = json.loads(cached.read_text(encoding="utf-8"))
            return {**stored, "source": source.name}
        decoded = decode_image(data, source.name, limits, shrink_to=WORK_SIDE)
    except Skip as skip:
        return {**record, "decision": "error", "reason": skip.code, "detail": str(skip)}
    whole, alpha, factor = _work_size(decoded.rgb, decoded.alpha)
    whole_seg = seg = segment(whole, alpha)
    rgb, cut = whole, body_cut(seg.mask)
    near = closeup(decoded.rgb, decoded.alpha, seg.mask, factor, WORK_SIDE)
    if near is not None:  # a small subject: analysed and framed from a cut-out of the file
        rgb, factor = near.rgb, near.factor
        seg = segment(rgb, near.alpha)
    factor *= decoded.scale  # of the file's own size
    white = on_white(rgb, seg)
    # how much of the picture's bottom edge the subject covers, not of the cut-out's
    scores = dataclasses.replace(inspect(rgb, seg), body_cut=cut)
    cues = humancues.method(cfg)
    if cues == humancues.MEDIAPIPE:
        found = humancues.measure(rgb, white, seg.mask, scores.human, scores.body_cut, cfg)
        scores = dataclasses.replace(scores, **dataclasses.asdict(found))
    record.update(
        {
            "decision": "analysed",
            "size": list(decoded.full_size),
            "notes": decoded.notes,
            "method": seg.method,
            "closeup": near is not None,
            "human_cues": cues,
            "scores": scores.as_dict(),
            "upscale": None,
        }
    )
    atomic_write_bytes(cache / "thumbs" / f"{sha}.jpg", _thumb(whole, whole_seg), durable=False)
    if seg.mask.sum() >= 16:
        framed, scale = frame(white, seg.mask, cfg)
        record["upscale"] = round(scale * factor, 3)
        # duplicates are compared at one size, whatever size the set is prepared at
        view, _ = frame(white, seg.mask, dataclasses.replace(cfg, size=dedup_compare.VIEW))
        record["hash"] = dedup.dhash(np.asarray(view))
        record["thumb"] = dedup.colour_signature(np.asarray(view))
        context, _ = frame(rgb, seg.mask, dataclasses.replace(cfg, size=dedup_compare.VIEW))
        record["context"] = dedup.context_signature(np.asarray(context))
        record["whole_hash"] = dedup.dhash(whole)
        atomic_write_bytes(cache / "framed" / f"{sha}.png", _png(framed), durable=False)
    atomic_write_text(cached, json.dumps(record), durable=False)
    return record


def _sync_images(out: Path, rows: list[dict]) -> None:
    """Make images/ hold exactly the kept pictures (hard links into the cache where possible)."""
    images = out / "images"
    images.mkdir(exist_ok=True)
    wanted = {Path(r["output"]).name: r["sha256"] for r in rows if r["decision"] == "keep"}
    for existing in images.iterdir():
        if existing.name not in wanted:
            existing.unlink()
    for name, sha in wanted.items():
        target, framed = images / name, out / ".cache" / "framed" / f"{sha}.png"
        if target.exists() and os.path.samefile(target, framed):
            continue
        target.unlink(missing_ok=True)
        try:
            os.link(framed, target)
        except OSError:
            shutil.copyfile(framed, target)


_warned: set[str] = set()


def _warn_fallback(cfg: PrepareConfig) -> None:
    """Once per process: MediaPipe was asked for but cannot be imported."""
    reason = humancues.fallback_reason(cfg)
    if reason and reason not in _warned:
        _warned.add(reason)
        warnings.warn(
            f"MediaPipe cannot be imported ({reason}): not_human is decided by colour and shape "
            "alone, which misses many drawn animals and objects; install heroforge[vision] and "
            'mediapipe==0.10.21 (see the README), or set prepare.human_cues = "colour"',
            RuntimeWarning,
            stacklevel=3,
        )


def _check_places(raw: Path, out: Path) -> None:
    require_folder(out, "--out", "the prepared set")
    if raw.is_dir() and (out.resolve() == raw.resolve() or raw.resolve() in out.resolve().parents):
        # the next run would read the kept pictures, manifest and review page as input
        raise UserError(f"--out {out} lies inside the input folder {raw}; choose one outside it")


def prepare(
    raw: str | os.PathLike[str],
    out: str | os.PathLike[str],
    cfg: PrepareConfig,
    workers: int = 0,
    progress: Callable[[int, int], None] | None = None,
    limits: IngestLimits | None = None,
) -> PrepareSummary:
    """Run the whole preparation; returns what became of the pictures (PrepareSummary).

    progress(done, total) is called as pictures finish. Interrupting is safe: every finished
    picture is cached, and the next run picks up from there.
    """
    from heroforge.data.overrides import HEADER, read_overrides
    from heroforge.data.review import write_review

    limits = limits or IngestLimits()
    out = Path(out)
    workers = worker_count(workers)
    _check_places(Path(raw), out)
    overrides_path = out / "overrides.csv"
    overrides = read_overrides(overrides_path)  # refuse a broken file before the long work
    sources, skipped = list_sources(raw, limits)
    cache = out / ".cache"
    for sub in ("records", "thumbs", "framed"):
        (cache / sub).mkdir(parents=True, exist_ok=True)
    records: list[PictureRecord] = [
        {"source": name, "decision": "error", "reason": skip.code, "detail": str(skip)}
        for name, skip in skipped
    ]
    total = len(sources)
    cues = humancues.method(cfg)
    _warn_fallback(cfg)
    if workers == 1 or total < 8:
        with one_blas_thread():  # and the caller's own setting back afterwards
            for i, source in enumerate(sources):
                records.append(process(source, cfg, cache, limits))
                if progress:
                    progress(i + 1, total)
            rows = finalise(records, overrides, cfg)
    else:
        # Forked workers are quick to start, but not after this process built MediaPipe graphs
        # (an earlier small run here analysed pictures itself): then they start fresh
        context = multiprocessing.get_context("spawn") if humancues.made_here() else None
        humancues.release()  # no detector threads running while the pool starts
        with ProcessPoolExecutor(workers, mp_context=context, initializer=one_core_each) as pool:
            args = [cfg] * total, [cache] * total, [limits] * total
            for i, rec in enumerate(pool.map(process, sources, *args, chunksize=4)):
                records.append(rec)
                if progress:
                    progress(i + 1, total)
            # the same workers compare the pictures for duplicates (a few batches each)
            rows = finalise(records, overrides, cfg, pool, 2 * workers)
    _sync_images(out, rows)
    # the signatures stay in the cache records: 9 + 5 kB each, of use to nobody reading
    manifest = "".join(
        json.dumps({k: v for k, v in r.items() if k not in ("thumb", "context")}, sort_keys=True)
        + "\n"
        for r in rows
    )
    atomic_write_text(out / "manifest.jsonl", manifest)
    if not overrides_path.exists():
        atomic_write_text(overrides_path, HEADER)
    write_review(out, rows)
    excluded: dict[str, int] = {}
    errors: dict[str, int] = {}
    for r in rows:
        if r["decision"] != "keep":
            group = errors if r["decision"] == "error" else excluded
            group[r["reason"]] = group.get(r["reason"], 0) + 1
    return PrepareSummary(
        inputs=len(rows),
        kept=sum(r["decision"] == "keep" for r in rows),
        excluded=excluded,
        errors=errors,
        human_cues=cues,
        # a typo in overrides.csv would otherwise change nothing, silently
        unknown_overrides=sorted(set(overrides) - {r["source"] for r in rows}),
    )
