"""Near-duplicates in colour: a re-cropped or JPEG-60 copy of a picture is one, a skin or hair
recolour of the same figure is not."""

import dataclasses
import io
import json

import numpy as np
import pytest
from PIL import Image

from heroforge.config import PrepareConfig, load_config
from heroforge.data import dedup
from heroforge.data import synth_figures as figures
from heroforge.data.prepare import frame
from heroforge.data.prepare import prepare as run_prepare
from heroforge.data.synth import hero_picture

SIZE = (420, 520)
THRESHOLD = PrepareConfig().duplicate_distance
# a palette whose hero has hair in its own colour and a light skin tone with a neighbour
PALETTE = {
    **figures.hero_palette(np.random.default_rng(3)),
    "skin": figures.SKIN_TONES[1],
    "hair": figures.HAIR[0],
}
RECOLOURS = {
    "skin": {**PALETTE, "skin": figures.SKIN_TONES[2]},  # the next tone: the closest there is
    "hair": {**PALETTE, "hair": figures.HAIR[3]},
}


def _framed(img: Image.Image) -> np.ndarray:
    """The picture as prepare frames it for comparison: the subject (here: everything that is
    not white) on white, squared around its bounding box."""
    rgb = np.asarray(img.convert("RGB"))
    mask = rgb.min(axis=2) < 245
    view, _ = frame(rgb, mask, dataclasses.replace(PrepareConfig(), size=dedup.VIEW))
    return np.asarray(view)


def _jpeg(img: Image.Image, quality: int, scale: float = 1.0) -> Image.Image:
    small = img.resize((round(img.width * scale), round(img.height * scale)), Image.LANCZOS)
    buf = io.BytesIO()
    small.save(buf, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def _recropped(img: Image.Image, share: float) -> Image.Image:
    """Cut `share` of the width and height off every side (into a bust's shoulders)."""
    dx, dy = round(img.width * share), round(img.height * share)
    return img.crop((dx, dy, img.width - dx, img.height - dy))


def _distance(a: Image.Image, b: Image.Image) -> float:
    return dedup.colour_distance(
        dedup.colour_signature(_framed(a)), dedup.colour_signature(_framed(b))
    )


@pytest.mark.parametrize("body", ["upper", "full"])
def test_a_recropped_and_a_jpeg_60_copy_are_duplicates(body):
    original = hero_picture(11, PALETTE, body, SIZE)
    assert _distance(original, _recropped(original, 0.05)) <= THRESHOLD
    assert _distance(original, _jpeg(original, quality=60, scale=0.7)) <= THRESHOLD


@pytest.mark.parametrize("body", ["upper", "full"])
@pytest.mark.parametrize("change", ["skin", "hair"])
def test_a_skin_or_hair_recolour_is_not_a_duplicate(body, change):
    original = hero_picture(11, PALETTE, body, SIZE)
    recoloured = hero_picture(11, RECOLOURS[change], body, SIZE)
    assert _distance(original, recoloured) > THRESHOLD
    # compared with a JPEG copy of the original too (the copy may be the one kept)
    assert _distance(_jpeg(original, quality=60), recoloured) > THRESHOLD


def test_find_duplicates_names_the_closest_earlier_picture_and_honours_include():
    original = _framed(hero_picture(12, PALETTE, "upper", SIZE))
    other = _framed(hero_picture(12, RECOLOURS["skin"], "upper", SIZE))
    pictures = [
        ("big.png", dedup.dhash(original), dedup.colour_signature(original), True),
        ("recolour.png", dedup.dhash(other), dedup.colour_signature(other), True),
        ("copy.jpg", dedup.dhash(original), dedup.colour_signature(original), True),
        ("kept-anyway.jpg", dedup.dhash(original), dedup.colour_signature(original), False),
    ]
    found = dedup.find_duplicates(pictures, max_bits=10, max_distance=THRESHOLD)
    assert found == {"copy.jpg": ("big.png", 0.0)}


def test_prepare_drops_copies_keeps_recolours_and_names_the_original(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    background = np.full((SIZE[1], SIZE[0], 3), (90, 170, 220), np.uint8)
    original = hero_picture(21, PALETTE, "upper", SIZE, background=background)
    original.save(raw / "original.png")
    _recropped(original, 0.04).save(raw / "recropped.png")
    _jpeg(original, quality=90, scale=0.8).save(raw / "copy60.jpg", quality=60)
    for change, palette in RECOLOURS.items():
        hero_picture(21, palette, "upper", SIZE, background=background).save(raw / f"{change}.png")
    # colour cues with no floor: only duplicates are in question here
    prepare_cfg = load_config("tiny-cpu").prepare
    cfg = dataclasses.replace(prepare_cfg, keep="both", human_cues="colour", min_human=0.0)
    run_prepare(raw, tmp_path / "out", cfg, workers=1)
    rows = {
        r["source"]: r
        for r in map(json.loads, (tmp_path / "out" / "manifest.jsonl").read_text().splitlines())
    }
    assert [rows[n]["decision"] for n in ("original.png", "skin.png", "hair.png")] == ["keep"] * 3
    for copy in ("recropped.png", "copy60.jpg"):
        assert rows[copy]["reason"] == "duplicate"
        assert rows[copy]["duplicate_of"] == "original.png"
        assert 0 <= rows[copy]["duplicate_distance"] <= cfg.duplicate_distance
    assert "thumb" not in rows["copy60.jpg"]  # the colour signature stays in the cache
    review = (tmp_path / "out" / "review.html").read_text()
    framed = f'.cache/framed/{rows["original.png"]["sha256"]}.png" alt="duplicates original.png"'
    assert framed in review
