"""Near-duplicates in colour: a re-cropped or JPEG-60 copy of a picture is one, a skin or hair
recolour of the same figure is not."""

import dataclasses
import io
import json
from concurrent.futures import ProcessPoolExecutor

import cv2
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageEnhance

from heroforge.config import PrepareConfig, load_config
from heroforge.data import dedup, dedup_compare
from heroforge.data import synth_figures as figures
from heroforge.data import synth_scene as scene
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
    view, _ = frame(rgb, mask, dataclasses.replace(PrepareConfig(), size=dedup_compare.VIEW))
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
        dedup.colour_signature(_framed(a)), dedup.colour_signature(_framed(b)), THRESHOLD
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


def _big_face(skin_lab: tuple[float, float, float], bun: tuple | None = None) -> Image.Image:
    """A face filling most of the picture, in the given skin colour (Lab), under grey hair;
    behind it a bun (its box and colour), outlined like the rest (a pale one in its own colour)."""
    lab = np.array([[skin_lab]], np.float32)
    skin = tuple(
        int(v) for v in np.clip(cv2.cvtColor(lab, cv2.COLOR_Lab2RGB)[0, 0] * 255 + 0.5, 0, 255)
    )
    img = Image.new("RGB", (400, 400), "white")
    draw = ImageDraw.Draw(img)
    if bun is not None:
        box, fill = bun
        outline = fill if min(fill) >= dedup_compare.PALE else (40, 40, 40)
        draw.ellipse(box, fill=fill, outline=outline, width=4)
    draw.ellipse((60, 60, 340, 360), fill=skin, outline=(40, 40, 40), width=4)
    draw.chord((60, 40, 340, 250), 180, 360, fill=(160, 160, 160), outline=(40, 40, 40), width=4)
    for x in (150, 250):
        draw.ellipse((x - 14, 200, x + 14, 228), fill=(50, 50, 50))
    draw.ellipse((170, 280, 230, 310), fill=(200, 60, 60), outline=(40, 40, 40), width=3)
    return img


def test_a_darker_skin_is_no_brightness_change_where_the_skin_is_most_of_the_picture():
    """A copy may be brightened (its gain is matched before comparing colours); a skin tone
    10 darker in lightness alone, on a face that is most of the picture, looks like one to a
    gain fitted on all pixels. The gain is the flat regions' median: the grey hair, the eyes
    and the mouth did not change, so the skin moved."""
    original = _big_face((88.0, 11.0, 16.0))
    darker_skin = _big_face((78.0, 13.0, 17.0))
    copy = _jpeg(ImageEnhance.Brightness(original).enhance(0.94), 85, 0.8)
    assert _distance(original, copy) <= THRESHOLD
    assert _distance(original, darker_skin) > THRESHOLD
    assert _distance(copy, darker_skin) > THRESHOLD


SKIN = (88.0, 11.0, 16.0)


BUN = ((270, 30, 350, 110), (90, 60, 30))
PALE_BUN = ((270, 30, 350, 110), (225, 230, 240))
BIG_BUN = ((290, 20, 370, 100), (90, 60, 30))  # beyond the face's bounding box


def test_a_part_drawn_in_one_picture_only_makes_another_character():
    """A woman beside a man in the same pose and colours differs by a bun: outside the other's
    outline, where the colours of the two cut-outs are not compared at all."""
    face, bun = _big_face(SKIN), _big_face(SKIN, BUN)
    assert _distance(face, bun) > THRESHOLD
    assert _distance(bun, face) > THRESHOLD
    assert _distance(bun, _jpeg(bun, quality=70, scale=0.8)) <= THRESHOLD


def test_a_pale_part_or_one_a_crop_cut_off_leaves_a_copy():
    """Cut-outs of one drawing differ where it is pale (a light wing lost to a light
    background) and where a copy was cropped into the subject: neither makes another picture."""
    assert _distance(_big_face(SKIN), _big_face(SKIN, PALE_BUN)) <= THRESHOLD
    bun = _big_face(SKIN, BIG_BUN)
    cropped = bun.crop((0, 0, 345, 400))  # through the bun, 25 px short of its right side
    assert _distance(bun, _jpeg(cropped, quality=90)) <= THRESHOLD


def test_outlines_left_a_pixel_apart_by_the_first_fit_are_refitted_a_recolours_are_not():
    """A copy framed at another scale lines up within a pixel or two at ALIGN_SIDE; the fit is
    redone on the full views when only outlines moved. Here the first fit's scale is 2.5% off
    (outlines up to 3 px away at the edges, as a re-cropped copy's were)."""
    original = _framed(hero_picture(11, PALETTE, "upper", SIZE))
    scale = 1.025
    off = np.array([[scale, 0, 128 * (1 - scale)], [0, scale, 128 * (1 - scale)]], np.float32)
    share, regions_moved = dedup_compare.moved_share(original, original, off, 0.0, THRESHOLD)
    assert share > 10 * THRESHOLD
    assert not regions_moved
    assert dedup_compare.refined_share(original, original, off, 0.0, THRESHOLD) == 0.0
    recoloured = _framed(hero_picture(11, RECOLOURS["skin"], "upper", SIZE))
    assert dedup_compare.refined_share(original, recoloured, off, 0.0, THRESHOLD) > THRESHOLD


def _picture(
    name: str, img: Image.Image, may_duplicate: bool = True, kept: bool = True
) -> dedup.Picture:
    framed = _framed(img)
    return dedup.Picture(
        name,
        dedup.dhash(framed),
        dedup.dhash(np.asarray(img)),
        dedup.colour_signature(framed),
        dedup.context_signature(framed),
        may_duplicate,
        kept,
    )


def test_find_duplicates_names_the_closest_earlier_picture_and_honours_include():
    original = hero_picture(12, PALETTE, "upper", SIZE)
    pictures = [
        _picture("big.png", original),
        _picture("recolour.png", hero_picture(12, RECOLOURS["skin"], "upper", SIZE)),
        _picture("copy.jpg", original),
        _picture("kept-anyway.jpg", original, may_duplicate=False),
    ]
    found = dedup.find_duplicates(pictures, max_bits=10, max_distance=THRESHOLD)
    assert found == {"copy.jpg": ("big.png", 0.0)}


def test_comparisons_spread_over_worker_processes_find_what_one_process_finds():
    """prepare hands the comparisons to its worker pool in batches; each picture's answer must
    not depend on which batch, or which process, it landed in."""
    pictures = []
    for seed in (12, 13):
        original = hero_picture(seed, PALETTE, "upper", SIZE)
        recolour = hero_picture(seed, RECOLOURS["hair"], "upper", SIZE)
        pictures += [
            _picture(f"{seed}.png", original),
            _picture(f"{seed}-recolour.png", recolour),
            _picture(f"{seed}-copy.jpg", _jpeg(original, 70)),
            _picture(f"{seed}-small.jpg", _jpeg(original, 90, 0.6)),
        ]
    alone = dedup.find_duplicates(pictures, max_bits=10, max_distance=THRESHOLD)
    assert set(alone) == {"12-copy.jpg", "12-small.jpg", "13-copy.jpg", "13-small.jpg"}
    with ProcessPoolExecutor(2) as pool:
        for parts in (2, 3, 5):
            spread = dedup.find_duplicates(pictures, 10, THRESHOLD, pool, parts)
            assert spread == alone


def test_a_group_of_copies_is_found_whether_its_pictures_were_kept_or_excluded(monkeypatch):
    original = hero_picture(12, PALETTE, "upper", SIZE)
    recolour = hero_picture(12, RECOLOURS["hair"], "upper", SIZE)
    pictures = [
        _picture("excluded-original.png", original, kept=False),
        _picture("excluded-copy.jpg", original, kept=False),
        _picture("kept-copy.jpg", original),  # would slip in beside its excluded original
        _picture("excluded-recolour.png", recolour, kept=False),
    ]
    found = dedup.find_duplicates(pictures, max_bits=10, max_distance=THRESHOLD)
    assert found == {
        "excluded-copy.jpg": ("excluded-original.png", 0.0),
        "kept-copy.jpg": ("excluded-original.png", 0.0),
    }
    # two excluded pictures are compared only when their miniatures are this close, or when
    # their whole pictures look alike (by hash): with the gate shut, the excluded copy is still
    # found by its whole picture; with that changed too, only the kept copy is
    monkeypatch.setattr(dedup_compare, "ROUGH_EXCLUDED", -1.0)
    found = dedup.find_duplicates(pictures, max_bits=10, max_distance=THRESHOLD)
    assert set(found) == {"excluded-copy.jpg", "kept-copy.jpg"}
    far = f"{int(pictures[0].whole_hash, 16) ^ (2**64 - 1):016x}"  # every bit flipped
    pictures[1] = dataclasses.replace(pictures[1], whole_hash=far)
    found = dedup.find_duplicates(pictures, max_bits=10, max_distance=THRESHOLD)
    assert found == {"kept-copy.jpg": ("excluded-original.png", 0.0)}


def _on_texture(palette: dict, wedge: str = "") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A small full figure on a textured background: (picture, its cut-out framed on white,
    the same square with its background), cut out exactly or with background beside it (a
    segmentation that kept some): a "wedge" (the figure framed off-centre), or a slab of
    background beside its "top" or "bottom" half (a segmentation that failed: about as much
    background as figure, a different part of it each time)."""
    background = scene.background(np.random.default_rng(1), "textured", SIZE, [PALETTE["suit"]])
    rgb = np.asarray(hero_picture(31, palette, "full", SIZE, 0.6, background))
    mask = np.abs(rgb.astype(np.int16) - background).max(axis=2) > 0
    x0, y0, bw, bh = cv2.boundingRect(mask.view(np.uint8))
    if wedge == "wedge":
        mask[y0 : y0 + bh // 2, x0 + bw - 5 : x0 + bw + 60] = True
    elif wedge in ("top", "bottom"):
        top = y0 if wedge == "top" else y0 + bh // 2
        mask[top : top + bh // 2, x0 + bw - 5 : x0 + 2 * bw] = True
    white = np.where(mask[..., None], rgb, 255).astype(np.uint8)
    cfg = dataclasses.replace(PrepareConfig(), size=dedup_compare.VIEW)
    framed, _ = frame(white, mask, cfg)
    context, _ = frame(rgb, mask, cfg)
    return rgb, np.asarray(framed), np.asarray(context)


def _cut(
    name: str, palette: dict, wedge: str = "", quality: int | None = None, clean: bool = True
) -> dedup.Picture:
    rgb, framed, context = _on_texture(palette, wedge)
    if quality is not None:  # the whole picture re-encoded, then cut out
        rgb, framed, context = (np.asarray(_jpeg(Image.fromarray(x), quality))
                                for x in (rgb, framed, context))  # fmt: skip
    return dedup.Picture(
        name,
        dedup.dhash(framed),
        dedup.dhash(rgb),
        dedup.colour_signature(framed),
        dedup.context_signature(context),
        cut_clean=clean,
    )


def test_a_copy_cut_out_with_a_wedge_of_background_is_found_by_its_background():
    """The cut-outs frame differently (their hashes are far apart and an alignment of them
    fails); the pictures before background removal line them up again. A recolour cut the
    same way stays apart."""
    original = _cut("original.png", PALETTE)
    copy = _cut("copy.jpg", PALETTE, "wedge", quality=90)
    recolour = _cut("skin.png", RECOLOURS["skin"], "wedge")
    a, b = dedup._decode(original.signature), dedup._decode(copy.signature)
    assert dedup_compare.distance(a, b, THRESHOLD) > THRESHOLD  # cut-outs alone: no copy
    found = dedup.find_duplicates([original, copy, recolour], 10, THRESHOLD)
    assert list(found) == ["copy.jpg"]
    assert found["copy.jpg"][0] == "original.png"


def test_pictures_whose_cut_outs_failed_are_compared_background_and_all():
    """Two cut-outs holding different slabs of background share too little to be compared.
    When the later picture's cut-out is not to be trusted (its subject does not stand out),
    the squares before background removal are compared in colour: the copy is found, a hair
    recolour of the figure on the same background, cut out the same way as the copy, is not."""
    original = _cut("original.png", PALETTE, "top", clean=False)
    copy = _cut("copy.jpg", PALETTE, "bottom", quality=85, clean=False)
    recolour = _cut("hair.png", RECOLOURS["hair"], "bottom", clean=False)
    found = dedup.find_duplicates([original, copy, recolour], 10, THRESHOLD)
    assert list(found) == ["copy.jpg"]
    assert found["copy.jpg"][0] == "original.png"
    # with the copy's cut-out trusted, only the cut-outs count: they are too unlike
    trusted = dataclasses.replace(copy, cut_clean=True)
    assert dedup.find_duplicates([original, trusted], 10, THRESHOLD) == {}


def test_a_small_figures_skin_recolour_is_judged_by_the_squares_only_when_excluded_anyway():
    """The squares show a small figure's recoloured face only as a few thin regions, which a
    copy's rescaling also leaves: compared that way, the recolour passes for a copy. That is
    done only for a picture whose own cut-out failed, which is excluded either way; one whose
    cut-out holds (it may be kept) is judged by its cut-out."""
    original = _cut("original.png", PALETTE, "top", clean=False)
    excluded = _cut("skin.png", RECOLOURS["skin"], "bottom", clean=False)
    assert list(dedup.find_duplicates([original, excluded], 10, THRESHOLD)) == ["skin.png"]
    may_be_kept = dataclasses.replace(excluded, cut_clean=True)
    assert dedup.find_duplicates([original, may_be_kept], 10, THRESHOLD) == {}


def test_prepare_drops_copies_keeps_recolours_and_names_the_original(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    background = np.full((SIZE[1], SIZE[0], 3), (90, 170, 220), np.uint8)
    original = hero_picture(21, PALETTE, "upper", SIZE, background=background)
    original.save(raw / "original.png")
    _recropped(original, 0.04).save(raw / "recropped.png")
    _jpeg(original, quality=90, scale=0.8).save(raw / "copy60.jpg", quality=60)
    # as big as the original and listed before it: the original still heads the group
    original.convert("RGB").save(raw / "as-big.jpg", quality=90)
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
    for copy in ("recropped.png", "copy60.jpg", "as-big.jpg"):
        assert rows[copy]["reason"] == "duplicate"
        assert rows[copy]["duplicate_of"] == "original.png"
        assert 0 <= rows[copy]["duplicate_distance"] <= cfg.duplicate_distance
    assert "thumb" not in rows["copy60.jpg"]  # the colour signature stays in the cache
    review = (tmp_path / "out" / "review.html").read_text()
    framed = f'.cache/framed/{rows["original.png"]["sha256"]}.png" alt="duplicates original.png"'
    assert framed in review


def test_a_copy_classified_otherwise_than_its_original_goes_as_its_duplicate(tmp_path):
    """How well a subject stands apart from its background changes when the picture is
    re-encoded and rescaled: with the threshold between the two scores, one of original and
    copy passes and the other does not. The group takes the biggest picture's decision; the
    copy goes as its duplicate. A recolour on the same background stays a picture of its own."""
    raw, out = tmp_path / "raw", tmp_path / "out"
    raw.mkdir()
    background = np.full((SIZE[1], SIZE[0], 3), (90, 170, 220), np.uint8)
    original = hero_picture(21, PALETTE, "upper", SIZE, background=background)
    original.save(raw / "original.png")
    _jpeg(original, quality=70, scale=0.6).save(raw / "copy.jpg", quality=70)
    hero_picture(21, RECOLOURS["skin"], "upper", SIZE, background=background).save(raw / "skin.png")
    # colour cues with no floor: only separability decides
    cfg = dataclasses.replace(
        load_config("tiny-cpu").prepare, keep="both", human_cues="colour", min_human=0.0
    )

    def manifest(min_separability: float) -> dict[str, dict]:
        changed = dataclasses.replace(cfg, min_separability=min_separability)
        run_prepare(raw, out, changed, workers=1)
        lines = (out / "manifest.jsonl").read_text().splitlines()
        return {r["source"]: r for r in map(json.loads, lines)}

    rows = manifest(0.0)
    score = {name: rows[name]["scores"]["separability"] for name in ("original.png", "copy.jpg")}
    assert score["original.png"] != score["copy.jpg"]
    rows = manifest((score["original.png"] + score["copy.jpg"]) / 2)
    own = "keep" if score["original.png"] > score["copy.jpg"] else "exclude"
    assert rows["original.png"]["decision"] == own
    assert rows["copy.jpg"]["reason"] == "duplicate"
    assert rows["copy.jpg"]["duplicate_of"] == "original.png"
    assert "duplicate_of" not in rows["skin.png"]
