"""The colour/shape score on drawn heads: where it looks for skin."""

import numpy as np
from PIL import Image, ImageDraw

from heroforge.data import inspect

SKIN = (255, 205, 148)
HAT_RED = (200, 20, 30)  # saturated: not a skin colour
SIZE = 200


def _head_under_hat(hat_share: float) -> tuple[np.ndarray, np.ndarray]:
    """A round face (with eyes) under a hat covering the top hat_share of the subject, on
    white, and the subject's mask."""
    img = Image.new("RGB", (SIZE, SIZE), "white")
    draw = ImageDraw.Draw(img)
    top, bottom = 10, 190
    brim = top + round(hat_share * (bottom - top))
    draw.ellipse((50, brim - 40, 150, bottom), fill=SKIN)
    draw.ellipse((75, brim + 20, 85, brim + 30), fill="black")
    draw.ellipse((115, brim + 20, 125, brim + 30), fill="black")
    draw.polygon([(100, top), (45, brim), (155, brim)], fill=HAT_RED)
    draw.rectangle((40, brim - 8, 160, brim), fill="white", outline=HAT_RED, width=8)
    rgb = np.asarray(img).copy()
    return rgb, (rgb < 250).any(-1)


def test_the_face_under_a_tall_hat_counts_as_skin():
    # the hat fills the top half: the face lies below the top 45% of the subject
    rgb, mask = _head_under_hat(0.5)
    assert inspect.human_likeness(rgb, mask, body_cut=0.0) >= 0.95


def test_a_subject_without_skin_colours_scores_lower(monkeypatch):
    rgb, mask = _head_under_hat(0.5)
    grey = rgb.copy()
    grey[mask] = (120, 120, 130)
    assert inspect.human_likeness(grey, mask, body_cut=0.0) <= 0.7
    # what the zone is for: looking at the top 45% only, the face under the hat is missed
    monkeypatch.setattr(inspect, "SKIN_ZONE", 0.45)
    assert inspect.human_likeness(rgb, mask, body_cut=0.0) <= 0.7


# Twemoji's skin-tone modifiers, lightest to darkest; the test adds a darker brown still
SKIN_TONES = [(247, 222, 206), (243, 210, 162), (212, 171, 136), (175, 126, 87), (124, 83, 62)]


def test_every_drawn_skin_tone_counts_as_skin():
    rgb, mask = _head_under_hat(0.5)
    face = (rgb == SKIN).all(-1)
    for tone in [*SKIN_TONES, (92, 61, 46)]:
        toned = rgb.copy()
        toned[face] = tone
        assert inspect.human_likeness(toned, mask, body_cut=0.0) >= 0.95, tone


def test_a_dark_grey_outline_is_not_skin():
    """Streamline draws everything with thick dark warm-grey outlines: hue and saturation
    alone took them for dark skin, so a blue pot cut by the bottom edge scored as a bust."""
    img = Image.new("RGB", (SIZE, SIZE), "white")
    ImageDraw.Draw(img).rounded_rectangle(
        (30, 20, 170, SIZE + 20), radius=40, fill=(70, 130, 220), outline=(69, 65, 60), width=12
    )
    rgb = np.asarray(img).copy()
    mask = (rgb < 250).any(-1)
    # upright (a bust) and shaped count; skin must not
    assert inspect.human_likeness(rgb, mask, body_cut=float(mask[-1].mean())) <= 0.7
    outlined_face = rgb.copy()
    outlined_face[(rgb == (70, 130, 220)).all(-1)] = SKIN_TONES[0]
    assert inspect.human_likeness(outlined_face, mask, body_cut=float(mask[-1].mean())) >= 0.95
