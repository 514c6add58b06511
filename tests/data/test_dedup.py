"""Near-duplicates in colour: a re-saved copy of a picture is one, a recolour is not."""

import dataclasses
import io
import json

import numpy as np
import pytest
from PIL import Image

from heroforge.config import load_config
from heroforge.data import dedup
from heroforge.data import synth_figures as figures
from heroforge.data.prepare import prepare
from heroforge.data.synth import hero_picture

SIZE = (420, 520)


def _palette(seed: int) -> dict:
    return figures.hero_palette(np.random.default_rng(seed))


def _framed(img: Image.Image) -> np.ndarray:
    """The picture as prepare frames it: it is on white already, so the whole of it."""
    return np.asarray(img.convert("RGB").resize((256, 256), Image.Resampling.LANCZOS))


def _jpeg(img: Image.Image, quality: int, scale: float) -> Image.Image:
    small = img.resize((round(img.width * scale), round(img.height * scale)), Image.LANCZOS)
    buf = io.BytesIO()
    small.save(buf, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


@pytest.mark.parametrize("body", ["upper", "full"])
def test_a_copy_is_closer_than_a_recolour(body):
    pal = _palette(3)
    original = hero_picture(11, pal, body, SIZE)
    copy = _jpeg(original, quality=70, scale=0.7).resize(SIZE, Image.LANCZOS)
    costume = hero_picture(11, {**pal, "suit": (30, 160, 60), "second": (40, 40, 200)}, body, SIZE)
    a = dedup.colour_signature(_framed(original))
    assert dedup.colour_distance(a, dedup.colour_signature(_framed(copy))) <= 0.005
    assert dedup.colour_distance(a, dedup.colour_signature(_framed(costume))) > 0.05


def test_find_duplicates_names_the_closest_earlier_picture_and_honours_include():
    pal = _palette(4)
    original = _framed(hero_picture(12, pal, "upper", SIZE))
    other = _framed(hero_picture(12, {**pal, "suit": (20, 20, 20)}, "upper", SIZE))
    pictures = [
        ("big.png", dedup.dhash(original), dedup.colour_signature(original), True),
        ("recolour.png", dedup.dhash(other), dedup.colour_signature(other), True),
        ("copy.jpg", dedup.dhash(original), dedup.colour_signature(original), True),
        ("kept-anyway.jpg", dedup.dhash(original), dedup.colour_signature(original), False),
    ]
    found = dedup.find_duplicates(pictures, max_bits=10, max_distance=0.005)
    assert found == {"copy.jpg": ("big.png", 0.0)}


def test_prepare_drops_a_resaved_copy_keeps_a_recolour_and_names_the_original(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    pal = _palette(5)
    background = np.full((SIZE[1], SIZE[0], 3), (90, 170, 220), np.uint8)
    original = hero_picture(21, pal, "upper", SIZE, background=background)
    original.save(raw / "original.png")
    _jpeg(original, quality=80, scale=0.8).save(raw / "copy.jpg", quality=90)
    recolour = {**pal, "suit": (200, 40, 40), "second": (240, 220, 40)}
    hero_picture(21, recolour, "upper", SIZE, background=background).save(raw / "recolour.png")
    # colour cues with no floor: only duplicates are in question here
    prepare_cfg = load_config("tiny-cpu").prepare
    cfg = dataclasses.replace(prepare_cfg, keep="both", human_cues="colour", min_human=0.0)
    prepare(raw, tmp_path / "out", cfg, workers=1)
    rows = {
        r["source"]: r
        for r in map(json.loads, (tmp_path / "out" / "manifest.jsonl").read_text().splitlines())
    }
    assert rows["original.png"]["decision"] == "keep"
    assert rows["recolour.png"]["decision"] == "keep"
    assert rows["copy.jpg"]["reason"] == "duplicate"
    assert rows["copy.jpg"]["duplicate_of"] == "original.png"
    assert 0 <= rows["copy.jpg"]["duplicate_distance"] <= cfg.duplicate_distance
    assert "thumb" not in rows["copy.jpg"]  # the colour signature stays in the cache
    review = (tmp_path / "out" / "review.html").read_text()
    framed = f'.cache/framed/{rows["original.png"]["sha256"]}.png" alt="duplicates original.png"'
    assert framed in review
