"""`heroforge synth`: a deliberately messy folder of procedural cartoon characters with exact
ground truth, the test bed of every later stage (prepare, training, generation).

Layout of the output folder:
    raw/            the pictures, as a scraped folder would hold them (JPEG, PNG, WEBP, RGBA
                    PNG, palette PNG; any size and aspect ratio; a few near-duplicates)
    masks/          the exact foreground mask of each picture (L, 0 or 255, same size)
    labels.json     per picture: kind, human-like, body extent, background, format, boxes
    contact_sheet.png

Picture i depends only on (seed, i), so the output is the same for any number of workers.
"""

from __future__ import annotations

import io
import json
import os
import shutil
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance

from heroforge.checks import require_folder, worker_count
from heroforge.data import synth_figures as figures
from heroforge.data import synth_scene as scene
from heroforge.data.sheet import contact_sheet
from heroforge.data.synth_shapes import RGB, Figure, Placement, render_figure, shade
from heroforge.errors import UserError
from heroforge.fileio import atomic_write_bytes, atomic_write_text

GENERATOR = "heroforge.synth/1"
KINDS = {
    "hero": 0.70,
    "photo": 0.08,
    "robot": 0.055,
    "insect": 0.055,
    "animal": 0.055,
    "object": 0.055,
}
BACKGROUND_ODDS = {"plain": 0.4, "gradient": 0.2, "textured": 0.2, "cluttered": 0.2}
FORMATS = {"png": 0.33, "jpeg": 0.33, "webp": 0.14, "png-rgba": 0.12, "png-palette": 0.08}
EXTENSIONS = {"png": "png", "jpeg": "jpg", "webp": "webp", "png-rgba": "png", "png-palette": "png"}
DUPLICATE_RATE = 0.03


def _pick(rng: np.random.Generator, odds: dict[str, float]) -> str:
    names = list(odds)
    p = np.array([odds[n] for n in names])
    return str(rng.choice(names, p=p / p.sum()))


@dataclass
class Sample:
    rgb: Image.Image  # the picture composited on its background
    alpha: Image.Image  # anti-aliased coverage of the subject (L)
    label: dict


def _canvas_size(rng: np.random.Generator, kind: str, body: str | None) -> tuple[int, int]:
    long_side = rng.uniform(128, 300) if rng.random() < 0.06 else rng.uniform(320, 1100)
    if body == "full":
        aspect = rng.uniform(0.55, 1.0)  # width / height
    elif body == "upper":
        aspect = rng.uniform(0.75, 1.3)
    else:
        aspect = rng.uniform(0.9, 1.6)
    if aspect >= 1:
        return round(long_side), round(long_side / aspect)
    return round(long_side * aspect), round(long_side)


def _place_whole(rng: np.random.Generator, fig: Figure, size: tuple[int, int]) -> Placement:
    """Fit the whole figure inside the picture with a margin, at a random scale and position."""
    w, h = size
    x0, y0, x1, y1 = fig.bounds()
    s = min(rng.uniform(0.55, 0.9) * h / (y1 - y0), 0.94 * w / (x1 - x0))
    free_x, free_y = w - (x1 - x0) * s, h - (y1 - y0) * s
    px = rng.uniform(0.03 * w, max(0.03 * w, free_x - 0.03 * w))
    py = rng.uniform(0.03 * h, max(0.03 * h, free_y - 0.03 * h))
    return Placement(s, (px - x0 * s, py - y0 * s))


def _place_upper(rng: np.random.Generator, fig: Figure, size: tuple[int, int]) -> Placement:
    """Frame head and chest: the bottom edge cuts the torso above the hips, legs never show."""
    w, h = size
    top = fig.bounds()[1]
    cut = rng.uniform(1.7, figures.HIP_Y - 0.15)
    s = h * (1 - rng.uniform(0.03, 0.18)) / (cut - top)
    neck_x = w * (0.5 + rng.uniform(-0.12, 0.12))
    return Placement(s, (neck_x, h - cut * s))


def hero_picture(
    seed: int,
    palette: dict[str, RGB],
    body: str,
    size: tuple[int, int],
    height: float = 0.8,
    background: np.ndarray | None = None,
) -> Image.Image:
    """One hero drawn from `seed` in the given colours: the same seed in another palette is the
    same figure (shape, pose, hair style, placement) recoloured. A full figure stands centred,
    `height` of the picture tall (small on a large canvas when low); a bust is cut by the
    bottom edge. background: H x W x 3 uint8 (None: white)."""
    rng = np.random.default_rng(seed)
    fig = figures.hero(rng, palette, full_body=body == "full")
    if body == "full":
        x0, y0, x1, y1 = fig.bounds()
        s = height * size[1] / (y1 - y0)
        place = Placement(s, (size[0] / 2 - (x0 + x1) / 2 * s, size[1] / 2 - (y0 + y1) / 2 * s))
    else:
        place = _place_upper(rng, fig, size)
    fg, alpha = render_figure(fig, place, size, shade(palette["suit"], 0.2))
    if background is None:
        return Image.composite(fg, Image.new("RGB", size, (255, 255, 255)), alpha)
    return Image.composite(fg, Image.fromarray(background), alpha)


def _photo_palette(rng: np.random.Generator) -> dict:
    """Everyday clothes and natural skin: muted, the colours of a photo rather than a comic."""
    pal = figures.hero_palette(rng)
    for key in ("suit", "second", "accent"):
        r, g, b = (int(0.55 * c + 0.45 * 128) for c in pal[key])
        pal[key] = shade((r, g, b), rng.uniform(0.7, 1.1))
    pal["skin"] = figures.SKIN_TONES[rng.integers(len(figures.SKIN_TONES))]
    return pal


def render_sample(seed: int, index: int) -> Sample:
    """Picture `index` of the set with this seed (duplicates re-render their original)."""
    rng = np.random.default_rng([seed, index])
    if index >= 10 and rng.random() < DUPLICATE_RATE:
        original_index = int(rng.integers(0, index))
        original = render_sample(seed, original_index)
        root = original.label["duplicate_of"] or file_name(original_index, original.label["format"])
        return _near_duplicate(rng, original, root)
    kind = _pick(rng, KINDS)
    human = kind in ("hero", "photo")
    body = str(rng.choice(["upper", "full"], p=[0.55, 0.45])) if human else None
    size = _canvas_size(rng, kind, body)
    if human:
        pal = _photo_palette(rng) if kind == "photo" else figures.hero_palette(rng)
        fig = figures.hero(rng, pal, full_body=body == "full")
        palette = [pal["suit"], pal["second"], pal["skin"]]
    else:
        fig = figures.NON_HUMAN[kind](rng)
        palette = [p.fill for p in fig.parts[:3]]
    fig = fig.rotated(rng.uniform(-3, 3) if body == "upper" else rng.uniform(-8, 8))
    place = _place_upper(rng, fig, size) if body == "upper" else _place_whole(rng, fig, size)
    outline = None if kind == "photo" else shade(palette[0], rng.uniform(0.0, 0.25))
    fg, alpha = render_figure(fig, place, size, outline, outline_units=rng.uniform(0.04, 0.09))
    if kind == "photo":
        fg = Image.fromarray(scene.photographic_finish(rng, np.asarray(fg), np.asarray(alpha)))
        bg_kind, bg = "photo", scene.photographic_background(rng, size)
    else:
        bg_kind = _pick(rng, BACKGROUND_ODDS)
        bg = scene.background(rng, bg_kind, size, palette)
    rgb = Image.composite(fg, Image.fromarray(bg), alpha)
    label = {
        "kind": kind,
        "human_like": human,
        "body": body,
        "background": bg_kind,
        "format": _pick(rng, FORMATS),
        "head_box": None if fig.head is None else place.box(fig.head, size),
        "duplicate_of": None,
        "jpeg_quality": int(rng.integers(70, 96)),
    }
    return Sample(rgb, alpha, label)


def _near_duplicate(rng: np.random.Generator, original: Sample, root: str) -> Sample:
    """A re-saved copy: slightly cropped, rescaled, with a small brightness change."""
    w, h = original.rgb.size
    box = (
        round(w * rng.uniform(0, 0.03)),
        round(h * rng.uniform(0, 0.03)),
        round(w * (1 - rng.uniform(0, 0.03))),
        round(h * (1 - rng.uniform(0, 0.03))),
    )
    factor = rng.uniform(0.6, 0.95)
    new_size = (
        max(16, round((box[2] - box[0]) * factor)),
        max(16, round((box[3] - box[1]) * factor)),
    )
    rgb = original.rgb.resize(new_size, Image.Resampling.LANCZOS, box=box)
    rgb = ImageEnhance.Brightness(rgb).enhance(rng.uniform(0.94, 1.06))
    alpha = original.alpha.resize(new_size, Image.Resampling.BILINEAR, box=box)
    label = dict(original.label)
    head = label["head_box"]
    if head is not None:
        sx, sy = new_size[0] / (box[2] - box[0]), new_size[1] / (box[3] - box[1])
        head = [
            (head[0] - box[0]) * sx,
            (head[1] - box[1]) * sy,
            (head[2] - box[0]) * sx,
            (head[3] - box[1]) * sy,
        ]
        label["head_box"] = [int(np.clip(v, 0, new_size[i % 2])) for i, v in enumerate(head)]
    label["format"] = "jpeg"
    label["jpeg_quality"] = int(rng.integers(75, 92))
    label["duplicate_of"] = root
    return Sample(rgb, alpha, label)


def _encode(sample: Sample) -> bytes:
    fmt, buf = sample.label["format"], io.BytesIO()
    if fmt == "jpeg":
        sample.rgb.save(buf, "JPEG", quality=sample.label["jpeg_quality"])
    elif fmt == "webp":
        sample.rgb.save(buf, "WEBP", quality=80, method=2)
    elif fmt == "png-rgba":
        # Transparent pixels hold black, as many exported PNGs do: the colour there means nothing.
        black = Image.new("RGB", sample.rgb.size, (0, 0, 0))
        rgba = Image.composite(sample.rgb, black, sample.alpha.point(lambda a: 255 if a else 0))
        rgba.putalpha(sample.alpha)
        rgba.save(buf, "PNG", compress_level=1)
    elif fmt == "png-palette":
        sample.rgb.quantize(256, dither=Image.Dither.NONE).save(buf, "PNG", compress_level=1)
    else:
        sample.rgb.save(buf, "PNG", compress_level=1)
    return buf.getvalue()


def file_name(index: int, fmt: str) -> str:
    return f"img_{index:05d}.{EXTENSIONS[fmt]}"


def write_sample(out: Path, seed: int, index: int) -> dict:
    """Render picture `index`, write it and its mask, and return its label."""
    sample = render_sample(seed, index)
    label = dict(sample.label)
    name = file_name(index, label["format"])
    if label["format"] == "png-rgba":
        label["background"] = "transparent"  # the file has no background, only alpha
    mask = sample.alpha.point(lambda a: 255 if a >= 128 else 0)
    atomic_write_bytes(out / "raw" / name, _encode(sample), durable=False)
    buf = io.BytesIO()
    mask.save(buf, "PNG", compress_level=1)
    atomic_write_bytes(out / "masks" / f"{Path(name).stem}.png", buf.getvalue(), durable=False)
    label.pop("jpeg_quality")
    return {
        "file": name,
        **label,
        "size": list(sample.rgb.size),
        "mask": f"masks/{Path(name).stem}.png",
        "bbox": list(mask.getbbox() or (0, 0, 0, 0)),
    }


def _prepare_out_dir(out: Path) -> None:
    """Create out/, or clear a previous synth output there; never touch a folder of other files."""
    require_folder(out, "--out", "the synthetic set")
    if out.exists() and any(out.iterdir()):
        labels = out / "labels.json"
        try:
            previous = json.loads(labels.read_text(encoding="utf-8")).get("generator")
        except (OSError, ValueError, AttributeError):
            previous = None
        if previous != GENERATOR:
            raise UserError(
                f"{out} is not empty and not a previous synth output; choose a new --out"
            )
        for sub in ("raw", "masks"):
            shutil.rmtree(out / sub, ignore_errors=True)
    for sub in ("raw", "masks"):
        (out / sub).mkdir(parents=True, exist_ok=True)


def synthesize(
    out: str | os.PathLike[str],
    count: int,
    seed: int = 0,
    workers: int = 0,
    progress: Callable[[int], None] | None = None,
) -> list[dict]:
    """Write `count` pictures with masks and labels.json to `out`; returns the labels.

    workers: processes to render with; 0 = one per CPU core. progress(n) is called as
    pictures finish.
    """
    if count < 1:
        raise UserError(f"--count must be at least 1, not {count}")
    out = Path(out)
    workers = worker_count(workers)
    _prepare_out_dir(out)
    labels: list[dict] = []
    if workers == 1:
        for i in range(count):
            labels.append(write_sample(out, seed, i))
            if progress:
                progress(1)
    else:
        with ProcessPoolExecutor(workers) as pool:
            jobs = pool.map(write_sample, [out] * count, [seed] * count, range(count), chunksize=8)
            for label in jobs:
                labels.append(label)
                if progress:
                    progress(1)
    index = {"generator": GENERATOR, "seed": seed, "count": count, "images": labels}
    atomic_write_text(out / "labels.json", json.dumps(index, indent=1))
    return labels


def write_contact_sheet(out: str | os.PathLike[str], labels: list[dict], limit: int = 64) -> Path:
    """contact_sheet.png in `out`: the first `limit` pictures captioned with their truth."""
    out = Path(out)
    items = []
    for label in labels[:limit]:
        with Image.open(out / "raw" / label["file"]) as img:
            img.load()
        body = f" {label['body']}" if label["body"] else ""
        items.append((img, f"{label['kind']}{body} / {label['background']}"))
    path = out / "contact_sheet.png"
    buf = io.BytesIO()
    contact_sheet(items).save(buf, "PNG")
    atomic_write_bytes(path, buf.getvalue())
    return path
