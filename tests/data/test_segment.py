import os

import cv2
import matplotlib
import numpy as np
import pytest
from PIL import Image, ImageDraw

from heroforge.config import load_config
from heroforge.data import segment_band, synth_figures, synth_scene
from heroforge.data.inspect import inspect
from heroforge.data.prepare_decide import decide
from heroforge.data.segment import FRAME_EXPLAINED, on_white, segment
from heroforge.data.synth import _place_upper
from heroforge.data.synth_shapes import render_figure


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


def _picture(folder, label) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    img = Image.open(folder / "raw" / label["file"])
    alpha = np.asarray(img)[..., 3] if img.mode == "RGBA" else None
    truth = np.asarray(Image.open(folder / label["mask"])) > 127
    return np.asarray(img.convert("RGB")), alpha, truth


@pytest.mark.parametrize(
    ("background", "floor"),
    [("plain", 0.96), ("gradient", 0.95), ("transparent", 0.99), ("textured", 0.9)],
)
def test_masks_match_the_truth(synth_set, background, floor):
    folder, labels = synth_set
    chosen = [lb for lb in labels if lb["background"] == background and lb["kind"] != "photo"][:12]
    assert len(chosen) >= 5
    ious = [_iou(segment(*_picture(folder, lb)[:2]).mask, _picture(folder, lb)[2]) for lb in chosen]
    assert np.mean(ious) >= floor, sorted(ious)


def test_cluttered_scenes_are_hard_to_separate(synth_set):
    folder, labels = synth_set
    cluttered = [lb for lb in labels if lb["background"] == "cluttered"][:10]
    scores = []
    for label in cluttered:
        rgb, alpha, _ = _picture(folder, label)
        scores.append(inspect(rgb, segment(rgb, alpha)).separability)
    assert np.mean(np.array(scores) < 0.5) >= 0.8


def _bust_on(background: Image.Image) -> tuple[np.ndarray, np.ndarray]:
    """A head and shoulders drawn over `background` (400 px), halved with anti-aliasing; with
    the true mask at 200 px."""
    shape = Image.new("L", background.size, 0)
    draw = ImageDraw.Draw(shape)
    draw.ellipse([140, 60, 260, 215], fill=255)  # head
    draw.rounded_rectangle([80, 200, 320, 400], radius=60, fill=255)  # shoulders, cut by the edge
    colours = Image.new("RGB", background.size, (230, 180, 140))
    ImageDraw.Draw(colours).rectangle([0, 200, 400, 400], fill=(20, 150, 140))
    picture = Image.composite(colours, background, shape)
    truth = np.asarray(shape.reduce(2)) >= 128
    return np.asarray(picture.reduce(2)), truth


@pytest.mark.parametrize("stripes", ["fine vertical", "wide horizontal"])
def test_patterned_backgrounds_separate_by_the_framing_palette(stripes):
    """Stripes 1.5 px wide leave no flat region to find the background with, and wide
    horizontal ones show a single colour along the top edge: the framing band's palette
    (and the blends between its colours) still finds all of the background."""
    background = Image.new("RGB", (400, 400), (200, 60, 60))
    draw = ImageDraw.Draw(background)
    if stripes == "fine vertical":
        for x in range(0, 400, 6):
            draw.rectangle([x, 0, x + 2, 400], fill=(150, 150, 150))
    else:
        for y in range(0, 400, 48):
            draw.rectangle([0, y + 24, 400, y + 47], fill=(40, 160, 40))
    rgb, truth = _bust_on(background)
    seg = segment(rgb)
    assert seg.method == "band"
    assert seg.separability >= 0.85  # the bottom edge is the bust's
    assert _iou(seg.mask, truth) > 0.95
    assert (on_white(rgb, seg)[:20] == 255).all()  # the stripes above the head are white


def test_the_band_methods_early_bound_never_rejects_what_it_would_accept(synth_set):
    """band_background rejects most pictures from strips along the frame before looking at
    the whole picture: that bound must never lie under the share the whole method explains
    (a rejection it would not make), and must reject a cluttered scene on its own."""
    folder, labels = synth_set
    chosen = [lb for lb in labels if lb["kind"] != "photo"][:40]
    bounds = {}
    for label in chosen:
        rgb = _picture(folder, label)[0]
        border = np.zeros(rgb.shape[:2], bool)
        border[0], border[-1], border[:, 0], border[:, -1] = True, True, True, True
        frame = border.copy()
        frame[-1] = False  # the frame: the border but the bottom edge
        palette = segment_band._framing_palette(rgb)
        bound = segment_band._frame_bound(rgb, palette)
        whole = segment_band.band_background(rgb, border, needed=0.0)
        assert whole is not None
        assert whole[frame].mean() <= bound + 1e-9, label["file"]
        bounds[label["background"]] = min(bound, bounds.get(label["background"], 1.0))
    assert bounds["cluttered"] < FRAME_EXPLAINED, bounds


def test_on_white_leaves_no_halo_of_the_old_background():
    """A black-outlined blue disc on green: after compositing, nothing green is left."""
    big = Image.new("RGB", (400, 400), (0, 200, 0))
    ImageDraw.Draw(big).ellipse([60, 60, 340, 340], fill=(30, 60, 220), outline=(0, 0, 0), width=12)
    rgb = np.asarray(big.reduce(2))  # anti-aliased edges, as in scraped art
    seg = segment(rgb)
    out = on_white(rgb, seg).astype(int)
    greenish = out[..., 1] - np.maximum(out[..., 0], out[..., 2])
    assert greenish.max() < 12
    assert (out[~seg.mask & (seg.alpha == 0)] == 255).all()  # the background is pure white
    yy, xx = np.mgrid[:200, :200]
    truth = (yy - 99.5) ** 2 + (xx - 99.5) ** 2 <= 70**2
    assert _iou(seg.mask, truth) > 0.98


def test_a_real_photograph_is_too_realistic():
    path = os.path.join(
        os.path.dirname(matplotlib.__file__), "mpl-data/sample_data/grace_hopper.jpg"
    )
    rgb = np.asarray(Image.open(path).convert("RGB"))
    scores = inspect(rgb, segment(rgb))
    reason, _ = decide(scores, load_config("superheroes-512").prepare, 1.0)
    assert reason == "too_realistic"


def _airbrushed_bust(seed: int, background: str) -> tuple[np.ndarray, np.ndarray]:
    """A synthetic hero bust drawn without outlines and with soft, airbrushed edges (as Noto
    draws hair), on a plain or gradient background; with its true mask."""
    rng = np.random.default_rng(seed)
    palette = synth_figures.hero_palette(rng)
    figure = synth_figures.hero(rng, palette, full_body=False)
    size = (320, 320)
    colours, cover = render_figure(figure, _place_upper(rng, figure, size), size, outline=None)
    soft = cv2.GaussianBlur(np.asarray(cover, np.float32) / 255, (0, 0), 3)[..., None]
    back = getattr(synth_scene, background)(rng, size).astype(np.float32)
    rgb = np.asarray(colours, np.float32) * soft + back * (1 - soft)
    return (rgb + 0.5).astype(np.uint8), soft[..., 0] >= 0.5


@pytest.mark.parametrize("background", ["plain", "gradient"])
def test_soft_edges_do_not_let_the_background_run_into_the_subject(background):
    """Soft edges step from background to subject in changes too small to be an edge, so the
    background's smooth region runs on into the subject; the part that the background's
    colour model does not explain is cut back out."""
    pictures = [_airbrushed_bust(seed, background) for seed in range(8)]
    ious = [_iou(segment(rgb).mask, truth) for rgb, truth in pictures]
    assert np.mean(ious) >= 0.93, ious
