"""The round head set apart at the top of a pictogram figure, in silhouettes drawn here."""

import dataclasses

import numpy as np
import pytest
from PIL import Image, ImageDraw

from heroforge.config import load_config
from heroforge.data import humancues
from heroforge.data.headshape import pictogram_head
from heroforge.data.inspect import Scores
from heroforge.data.prepare_decide import decide

CFG = load_config("superheroes-512").prepare


def _silhouette(shapes: list[tuple[str, tuple, int]], size: int = 300) -> np.ndarray:
    """A mask drawn from (kind, box or line, width) parts: "disc", "box" or "line"."""
    img = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(img)
    for kind, where, width in shapes:
        if kind == "disc":
            draw.ellipse(where, fill=255)
        elif kind == "box":
            draw.rectangle(where, fill=255)
        else:
            draw.line(where, fill=255, width=width)
    return np.asarray(img) > 0


def _figure(head: tuple[int, int, int], neck: int = 0) -> list[tuple[str, tuple, int]]:
    """A walking pictogram: torso, two legs, two arms; a round head at (x, y) of radius r, a
    gap under it, or a neck of this width joining it to the torso."""
    x, y, r = head
    parts = [
        ("disc", (x - r, y - r, x + r, y + r), 0),
        ("box", (130, 90, 170, 190), 0),
        ("line", (140, 185, 115, 280), 16),
        ("line", (160, 185, 185, 280), 16),
        ("line", (135, 100, 100, 170), 14),
        ("line", (165, 100, 200, 170), 14),
    ]
    if neck:
        parts.append(("box", (x - neck // 2, y, x + neck // 2, 95), 0))
    return parts


def test_a_round_head_apart_from_the_body_is_found():
    diameter = pictogram_head(_silhouette(_figure((150, 55, 24))))
    # the head is 48 px of a 262 px tall figure
    assert diameter == pytest.approx(48 / 262, abs=0.03)
    # a thin neck does not join it to the body
    assert pictogram_head(_silhouette(_figure((150, 55, 24), neck=10))) > 0


@pytest.mark.parametrize(
    ("what", "parts"),
    [
        # a neck as wide as the head: one mass, not a round part of its own
        ("thick neck", _figure((150, 55, 24), neck=44)),
        # a round part low in the subject: a headless figure with a ball between its feet
        ("ball low", [*_figure((150, 55, 24))[1:], ("disc", (135, 250, 165, 280), 0)]),
        # two rings at the top (scissors, a pair of ears or antennae): which would be the head?
        ("pair", [*_figure((150, 55, 24))[1:], ("disc", (95, 10, 135, 50), 0),
                  ("disc", (165, 10, 205, 50), 0)]),
        # a round part at the top but at the side (a poodle's pompom, a flag's ball)
        ("at the side", [("box", (60, 90, 250, 190), 0), ("disc", (225, 30, 275, 80), 0)]),
    ],
)  # fmt: skip
def test_other_round_parts_are_not_heads(what, parts):
    assert pictogram_head(_silhouette(parts)) == 0.0, what


def test_the_head_works_at_any_picture_size():
    small = _silhouette(_figure((150, 55, 24)))
    big = np.asarray(Image.fromarray(small).resize((900, 900), Image.Resampling.NEAREST))
    assert pictogram_head(big) == pytest.approx(pictogram_head(small), abs=0.01)
    assert pictogram_head(np.zeros((50, 50), bool)) == 0.0


def test_a_pictogram_head_makes_a_human_like_subject_human():
    base = {"realism": 0.1, "separability": 0.9, "human": 0.7, "body_cut": 0.0, "base": 0.2}
    faceless = Scores(**base, fill=0.4, tall=2.0, face=0.0, face_short=0.0, pose=0.0, knee=0.0)
    mp = humancues.MEDIAPIPE
    assert decide(faceless, CFG, 1.0, mp)[0] == "not_human"
    assert decide(dataclasses.replace(faceless, head=0.15), CFG, 1.0, mp)[0] is None
    # on a subject whose colours and shape say little of a person, a round top is not enough
    unlikely = dataclasses.replace(faceless, head=0.15, human=CFG.head_human - 0.1)
    assert decide(unlikely, CFG, 1.0, mp)[0] == "not_human"


class _NoFaceNoPose:
    """MediaPipe finding nothing at all (a faceless pictogram)."""

    def faces(self, view, subject_width):
        return 0.0, 0.0

    def body(self, view):
        return 0.0, 0.0

    def presence(self, view):
        return 0.0


@pytest.mark.parametrize(
    ("human", "body_cut", "measured"),
    [
        (0.7, 0.0, True),  # human-ish colours and shape, no face: the head decides
        (CFG.head_human - 0.1, 0.0, False),  # the head could not make it human: not measured
        (1.0, 0.5, False),  # a bust the colour/shape score vouches for alone
    ],
)
def test_the_head_is_measured_only_where_it_can_decide(monkeypatch, human, body_cut, measured):
    monkeypatch.setattr(humancues, "_detectors", _NoFaceNoPose)
    mask = _silhouette(_figure((150, 55, 24)))
    white = np.where(mask[..., None], 0, 255).astype(np.uint8).repeat(3, axis=2)
    cues = humancues.measure(white, white, mask, human=human, body_cut=body_cut, cfg=CFG)
    assert cues.head == (pictogram_head(mask) if measured else -1.0)
    assert pictogram_head(mask) > 0
