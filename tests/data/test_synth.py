import hashlib
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter

from heroforge.data.synth import EXTENSIONS, FORMATS, KINDS, synthesize
from heroforge.errors import UserError

PIL_FORMAT = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP", "png-rgba": "PNG", "png-palette": "PNG"}


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != "contact_sheet.png"
    }


def _load(folder: Path, label: dict) -> tuple[Image.Image, np.ndarray]:
    img = Image.open(folder / "raw" / label["file"])
    img.load()
    mask = np.asarray(Image.open(folder / label["mask"])) > 127
    return img, mask


def test_same_seed_same_bytes_for_any_worker_count(tmp_path):
    synthesize(tmp_path / "a", 30, seed=7, workers=1)
    synthesize(tmp_path / "b", 30, seed=7, workers=2)
    synthesize(tmp_path / "c", 30, seed=8, workers=2)
    a, b, c = (_digest(tmp_path / n) for n in "abc")
    assert len(a) == 30 * 2 + 1  # pictures, masks, labels.json
    assert a == b
    assert sum(a[k] != c.get(k) for k in a) > 50  # another seed, other pictures


def test_count_files_and_label_fields(synth_set):
    folder, labels = synth_set
    assert len(labels) == len(list((folder / "raw").iterdir())) == 240
    assert len(list((folder / "masks").iterdir())) == 240
    for label in labels:
        img, mask = _load(folder, label)
        assert img.format == PIL_FORMAT[label["format"]]
        assert label["file"].endswith(EXTENSIONS[label["format"]])
        assert list(img.size) == label["size"] == [mask.shape[1], mask.shape[0]]
        assert label["human_like"] == (label["kind"] in ("hero", "photo"))
        assert (label["body"] is None) == (not label["human_like"])
        assert mask.any()


def test_the_set_is_varied_and_messy(synth_set):
    _, labels = synth_set
    assert set(Counter(lb["kind"] for lb in labels)) == set(KINDS)
    assert set(Counter(lb["format"] for lb in labels)) == set(FORMATS)
    backgrounds = Counter(lb["background"] for lb in labels)
    assert {"plain", "gradient", "textured", "cluttered", "transparent", "photo"} <= set(
        backgrounds
    )
    bodies = Counter(lb["body"] for lb in labels if lb["body"])
    assert min(bodies["upper"], bodies["full"]) > 40
    aspects = [w / h for w, h in (lb["size"] for lb in labels)]
    assert min(aspects) < 0.75
    assert max(aspects) > 1.3
    sides = [max(lb["size"]) for lb in labels]
    assert min(sides) < 300
    assert max(sides) > 900  # some too small for 512 px
    assert 2 <= sum(lb["duplicate_of"] is not None for lb in labels) <= 20


def test_mask_covers_everything_drawn_on_plain_backgrounds(synth_set):
    """Outside the mask a lossless picture is exactly its background; the mask's rim is outline."""
    folder, labels = synth_set
    checked = 0
    for label in labels:
        if not (label["background"] == "plain" and label["format"] == "png"):
            continue
        img, mask = _load(folder, label)
        rgb = np.asarray(img.convert("RGB")).astype(int)
        grown = np.asarray(Image.fromarray(mask).filter(ImageFilter.MaxFilter(5))) > 0
        bg = rgb[~grown]
        assert (bg == bg[0]).all(), label["file"]  # nothing drawn outside the mask
        inner = np.asarray(Image.fromarray(mask).filter(ImageFilter.MinFilter(5))) > 0
        rim = rgb[mask & ~inner]
        differs = np.abs(rim - bg[0]).sum(axis=1) > 30
        assert differs.mean() > 0.9, label["file"]  # the mask does not spill onto background
        checked += 1
    assert checked >= 10


def test_alpha_of_rgba_pictures_is_the_mask(synth_set):
    folder, labels = synth_set
    rgba = [lb for lb in labels if lb["format"] == "png-rgba"]
    assert rgba
    for label in rgba:
        img, mask = _load(folder, label)
        assert img.mode == "RGBA"
        assert np.array_equal(np.asarray(img)[..., 3] >= 128, mask)


def test_body_extent_matches_what_is_visible(synth_set):
    """Full body: the whole figure is in the frame, about 7 heads tall. Upper body: the bottom
    edge cuts the torso, well under 4 heads of figure are visible."""
    folder, labels = synth_set
    for label in labels:
        if label["body"] is None or label["duplicate_of"]:
            continue
        _, mask = _load(folder, label)
        h = mask.shape[0]
        _, y0, _, y1 = label["head_box"]
        head_h = y1 - y0
        assert y0 > 0, label["file"]
        assert head_h > 4, label["file"]  # the head is always fully visible
        rows = np.flatnonzero(mask.any(axis=1))
        if label["body"] == "full":
            assert rows[-1] < h - 1, label["file"]  # the feet stand inside the picture
            assert (rows[-1] - y0) / head_h > 6.0, label["file"]
        else:
            assert rows[-1] == h - 1, label["file"]  # cut off by the bottom edge
            assert (h - y0) / head_h < 4.3, label["file"]


def test_near_duplicates_look_like_their_original(synth_set):
    folder, labels = synth_set
    by_name = {lb["file"]: lb for lb in labels}

    def thumb(label: dict) -> np.ndarray:
        img = Image.open(folder / "raw" / label["file"]).convert("L").resize((16, 16))
        t = np.asarray(img, float).ravel()
        return (t - t.mean()) / (t.std() + 1e-6)  # brightness changes do not count

    dups = [lb for lb in labels if lb["duplicate_of"]]
    assert dups
    for dup in dups:
        original = by_name[dup["duplicate_of"]]
        assert original["duplicate_of"] is None
        assert dup["kind"] == original["kind"]
        assert dup["body"] == original["body"]
        same = np.mean(thumb(dup) * thumb(original))  # correlation
        others = [np.mean(thumb(dup) * thumb(lb)) for lb in labels[:30] if lb is not original]
        assert same > 0.9, dup["file"]
        assert same > max(others), dup["file"]


def test_photographic_pictures_have_photo_statistics(synth_set):
    """The 'photo' kind is what a realism check should catch: many colours, few flat pixels."""
    folder, labels = synth_set

    def colours(label: dict) -> int:
        img, mask = _load(folder, label)
        rgb = np.asarray(img.convert("RGB"))[mask].astype(int) >> 4
        return len(np.unique(rgb[:, 0] * 256 + rgb[:, 1] * 16 + rgb[:, 2]))

    lossless = [lb for lb in labels if lb["format"] == "png"]
    photo = [colours(lb) for lb in lossless if lb["kind"] == "photo"]
    cartoon = [colours(lb) for lb in lossless if lb["kind"] == "hero"]
    assert photo
    assert cartoon
    assert np.median(photo) > 4 * np.median(cartoon)


def test_labels_json_is_complete(synth_set):
    folder, labels = synth_set
    index = json.loads((folder / "labels.json").read_text())
    assert index["seed"] == 3
    assert index["count"] == 240
    assert [lb["file"] for lb in labels] == sorted(lb["file"] for lb in labels)


def test_refuses_a_foreign_non_empty_folder_and_replaces_its_own(tmp_path):
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "holiday.jpg").write_bytes(b"precious")
    with pytest.raises(UserError, match="not empty and not a previous synth output"):
        synthesize(foreign, 3)
    assert (foreign / "holiday.jpg").read_bytes() == b"precious"
    synthesize(tmp_path / "mine", 12, workers=1)
    synthesize(tmp_path / "mine", 4, workers=1)  # a re-run replaces the previous set
    assert len(list((tmp_path / "mine" / "raw").iterdir())) == 4


def test_cli_synth_and_bad_count(cli, tmp_path):
    code, _, err = cli("synth", "--out", str(tmp_path / "s"), "--count", "5", "--workers", "1")
    assert code == 0, err
    assert (tmp_path / "s" / "contact_sheet.png").exists()
    assert len(list((tmp_path / "s" / "raw").iterdir())) == 5
    code, _, err = cli("synth", "--out", str(tmp_path / "t"), "--count", "0")
    assert code == 2
    assert "--count must be at least 1" in err
    code, _, err = cli("synth", "--out", str(tmp_path / "t"), "--count", "2", "--workers", "-2")
    assert code == 2
    assert "--workers must be 0" in err
    (tmp_path / "taken.zip").write_bytes(b"x")
    code, _, err = cli("synth", "--out", str(tmp_path / "taken.zip"), "--count", "2")
    assert code == 2
    assert "is a file; give a folder" in err
