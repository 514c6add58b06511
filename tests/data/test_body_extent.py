"""Upper or full body on drawings unlike the synthetic set's: busts that float in the picture,
ending on a straight line (emoji-style art), and whole figures standing on the bottom edge."""

import numpy as np
import pytest

from heroforge.config import load_config
from heroforge.data import synth
from heroforge.data import synth_figures as figures
from heroforge.data.inspect import body_base, inspect
from heroforge.data.prepare_decide import decide
from heroforge.data.segment import segment

CFG = load_config("superheroes-512", ["prepare.keep=both"]).prepare


def _hero(seed: int, body: str, size: tuple[int, int]) -> np.ndarray:
    palette = figures.hero_palette(np.random.default_rng(seed))
    return np.asarray(synth.hero_picture(seed, palette, body, size, height=0.9))


def _body(rgb: np.ndarray) -> str:
    scores = inspect(rgb, segment(rgb, None))
    return decide(scores, CFG, 1.0)[1]


@pytest.mark.parametrize("seed", [1, 6])  # busts with arms out: not compact in their box
def test_a_bust_floating_above_white_is_upper_body(seed):
    canvas = np.full((480, 400, 3), 255, np.uint8)
    canvas[40:360, 40:360] = _hero(seed, "upper", (320, 320))  # its cut line now floats
    assert _body(canvas) == "upper"


@pytest.mark.parametrize("seed", [2, 5, 7])  # slender figures
def test_a_full_figure_whose_soles_the_bottom_edge_cuts_is_full_body(seed):
    rgb = _hero(seed, "full", (320, 480))
    lowest = np.flatnonzero((rgb < 250).any(2).any(1))[-1]
    cut = rgb[: lowest - 3]  # it stands on the bottom edge, which cuts its soles
    scores = inspect(cut, segment(cut, None))
    assert scores.body_cut > CFG.upper_min_cut  # touches the edge like a bust would
    assert decide(scores, CFG, 1.0)[1] == "full"


def test_body_base_is_the_bottom_line_per_unit_of_height():
    mask = np.zeros((100, 100), bool)
    mask[10:90, 20:60] = True  # a block ends on a line half its height wide
    assert body_base(mask) == pytest.approx(0.5)
    mask[:] = False
    mask[10:90, 45:55] = True  # a post: narrow
    mask[10:30, 20:80] = True  # ... under a wide top
    assert body_base(mask) == pytest.approx(10 / 80)
    assert body_base(np.zeros((8, 8), bool)) == 0.0


def _rounded_bust() -> np.ndarray:
    """A bust drawn with a long body ending in a rounded line (Streamline's style): a round
    head on a tall rounded-rectangle body, floating on white; 1.6 times as tall as wide."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (400, 480), "white")
    draw = ImageDraw.Draw(img)
    draw.rounded_rectangle((110, 170, 290, 370), radius=70, fill=(40, 90, 200))
    draw.ellipse((140, 80, 260, 200), fill=(255, 205, 148))
    return np.asarray(img).copy()


def test_a_tall_bust_ending_in_a_rounded_line_is_upper_body():
    scores = inspect(_rounded_bust(), segment(_rounded_bust(), None))
    # neither squat enough for the first compactness rule nor ending on a straight base
    assert scores.tall > CFG.upper_max_tall
    assert scores.base < CFG.upper_min_base
    assert _body(_rounded_bust()) == "upper"


@pytest.mark.parametrize("seed", [2, 5])
def test_a_whole_figure_as_tall_is_still_full_body(seed):
    # a standing hero of about the same proportions leaves much of its box empty
    canvas = np.full((520, 520, 3), 255, np.uint8)
    canvas[20:500, 60:380] = _hero(seed, "full", (320, 480))
    scores = inspect(canvas, segment(canvas, None))
    assert scores.fill < CFG.upper_tall_min_fill
    assert _body(canvas) == "full"
