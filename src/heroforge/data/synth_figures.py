"""The characters of the synthetic set: heroes (human-like) and non-human subjects.

A hero is built in figure units with the neck at the origin, y downwards and the head one unit
tall: head and hair, mask, torso with emblem and belt, arms in a pose, legs and boots, cape.
Non-human subjects (robot, insect, animal, object) have silhouettes and palettes that are
deliberately unlike a person's.
"""

from __future__ import annotations

import numpy as np

from heroforge.data.synth_shapes import (
    RGB,
    Figure,
    arc,
    capsule,
    ellipse,
    hsv,
    polar,
    rect,
    shade,
    star,
)

SKIN_TONES: list[RGB] = [
    (255, 224, 196), (241, 194, 160), (224, 172, 130), (198, 134, 94),
    (161, 102, 65), (120, 75, 45), (88, 56, 36),
]  # fmt: skip
FANTASY_SKIN: list[RGB] = [(120, 190, 110), (110, 150, 220), (170, 170, 180), (200, 120, 200)]
HAIR: list[RGB] = [(25, 20, 20), (90, 55, 30), (230, 200, 110), (180, 60, 30), (235, 235, 240)]

# y of the hero's landmarks in figure units (neck at 0, head one unit tall)
HEAD_TOP, HIP_Y, FEET_Y = -1.05, 3.0, 6.5


def hero_palette(rng: np.random.Generator) -> dict[str, RGB]:
    hue = rng.random()
    suit = hsv(hue, rng.uniform(0.6, 1.0), rng.uniform(0.55, 0.95))
    second = hsv(
        hue + rng.choice([0.5, 0.33, -0.33, 0.08]), rng.uniform(0.5, 1), rng.uniform(0.4, 1)
    )
    accent = hsv(rng.choice([0.14, 0.0, 0.55, hue + 0.5]), rng.uniform(0.3, 1), 1.0)
    skin_pool = FANTASY_SKIN if rng.random() < 0.08 else SKIN_TONES
    return {
        "suit": suit,
        "second": second,
        "accent": accent,
        "skin": skin_pool[rng.integers(len(skin_pool))],
        "hair": HAIR[rng.integers(len(HAIR))] if rng.random() < 0.85 else second,
        "eye": (255, 255, 255),
    }


def _arm_pose(rng: np.random.Generator) -> tuple[float, float]:
    """(upper-arm angle, elbow bend) in degrees from hanging straight down, outwards positive."""
    pose = rng.choice(["relaxed", "raised", "hips", "flex", "reach"])
    if pose == "relaxed":
        return rng.uniform(8, 30), rng.uniform(0, 25)
    if pose == "raised":
        return rng.uniform(140, 175), rng.uniform(-10, 10)
    if pose == "hips":
        return rng.uniform(35, 55), rng.uniform(-110, -80)
    if pose == "flex":
        return rng.uniform(75, 95), rng.uniform(80, 110)
    return rng.uniform(60, 100), rng.uniform(-10, 15)


def _hair(fig: Figure, rng: np.random.Generator, color: RGB, behind: bool) -> None:
    style = rng.choice(["spiky", "bob", "long", "mohawk", "none"], p=[0.3, 0.25, 0.2, 0.1, 0.15])
    if behind and style == "long":
        fig.add(capsule([0, -0.6], [0, 0.45], 0.5, 0.55), color)
    elif not behind and style == "spiky":
        tips = rng.integers(5, 9)
        xs = np.linspace(-0.45, 0.45, tips * 2 + 1)
        ys = np.where(np.arange(xs.size) % 2 == 1, -1.05 - rng.uniform(0.2, 0.45, xs.size), -0.85)
        base = arc(0, -0.55, 0.44, 0.4, 0, -np.pi, 12)
        fig.add(np.concatenate([np.stack([xs, ys], 1), base]), color)
    elif not behind and style in ("bob", "long"):
        fig.add(arc(0, -0.6, 0.47, 0.52, 0.15, -np.pi - 0.15, 24), color)
    elif not behind and style == "mohawk":
        fig.add(ellipse(0, -1.0, 0.09, 0.3), color)


def _emblem(fig: Figure, rng: np.random.Generator, color: RGB, back: RGB) -> None:
    cx, cy = 0.0, rng.uniform(0.8, 1.1)
    shape = rng.choice(["star", "circle", "diamond", "bolt", "triangle", "bars"])
    if rng.random() < 0.6:
        fig.add(ellipse(cx, cy, 0.48, 0.42), back)
    if shape == "star":
        fig.add(star(cx, cy, 0.36, 0.15), color)
    elif shape == "circle":
        fig.add(ellipse(cx, cy, 0.3, 0.3), color)
    elif shape == "diamond":
        fig.add(np.array([[cx, cy - 0.4], [cx + 0.32, cy], [cx, cy + 0.4], [cx - 0.32, cy]]), color)
    elif shape == "bolt":
        bolt = [[0.12, -0.4], [-0.2, 0.05], [0.02, 0.05], [-0.12, 0.4], [0.22, -0.08], [0.0, -0.08]]
        fig.add(np.array(bolt) + np.array([cx, cy]), color)
    elif shape == "triangle":
        fig.add(np.array([[cx, cy + 0.35], [cx + 0.38, cy - 0.28], [cx - 0.38, cy - 0.28]]), color)
    else:
        fig.add(rect(cx - 0.3, cy - 0.28, cx + 0.3, cy - 0.12), color)
        fig.add(rect(cx - 0.3, cy + 0.1, cx + 0.3, cy + 0.26), color)


def _face(fig: Figure, rng: np.random.Generator, pal: dict[str, RGB], masked: bool) -> None:
    eye_y = -0.58
    if masked:
        band = np.concatenate([arc(0, eye_y, 0.46, 0.16, np.pi, 2 * np.pi, 14)])
        band = np.concatenate([band, arc(0, eye_y + 0.02, 0.46, 0.12, 0, np.pi, 14)])
        fig.add(band, pal["second"])
    for side in (-1, 1):
        fig.add(ellipse(side * 0.17, eye_y, 0.1, 0.07 if masked else 0.09, 16), pal["eye"])
        if not masked:
            fig.add(ellipse(side * 0.16, eye_y + 0.01, 0.045, 0.05, 10), (30, 30, 40), False)
    mouth_y = -0.22 + rng.uniform(-0.03, 0.03)
    fig.add(arc(0, mouth_y - 0.08, 0.16, 0.1, 0.3, np.pi - 0.3, 8), shade(pal["skin"], 0.55), False)


def hero(rng: np.random.Generator, pal: dict[str, RGB], full_body: bool) -> Figure:
    """A caped, masked, emblemed character in a random pose (figure units, neck at origin)."""
    fig = Figure()
    broad = rng.uniform(0.8, 1.05)  # shoulder half-width
    waist = broad * rng.uniform(0.6, 0.75)
    caped = rng.random() < 0.6
    if caped:
        flare = rng.uniform(1.3, 2.0)
        low = FEET_Y - 0.3 if full_body else HIP_Y + 2.0
        fig.add(
            np.array([[-broad * 0.8, 0.1], [broad * 0.8, 0.1], [flare, low], [-flare, low]]),
            pal["second"],
        )
    _hair(fig, rng, pal["hair"], behind=True)
    if full_body:  # legs go behind the torso
        spread = rng.uniform(4, 22)
        for side in (-1, 1):
            hip = np.array([side * 0.42, HIP_Y - 0.15])
            knee = polar(hip, 1.7, spread + rng.uniform(-4, 4), side)
            ankle = polar(knee, 1.55, rng.uniform(-6, 6), side)
            fig.add(capsule(hip, knee, 0.38, 0.31), pal["suit"])
            fig.add(
                capsule(knee, ankle, 0.32, 0.27),
                pal["accent"] if rng.random() < 0.2 else pal["suit"],
            )
            boot = np.array(
                [[-0.26, -0.55], [0.26, -0.55], [0.3, 0.05], [side * 0.55, 0.2], [-0.3, 0.2]]
            )
            fig.add(boot + ankle, pal["second"])
    arms = [_arm_pose(rng) for _ in (-1, 1)]
    sleeve = pal["suit"] if rng.random() < 0.7 else pal["skin"]
    for side, (up, bend) in zip((-1, 1), arms, strict=True):
        shoulder = np.array([side * (broad - 0.12), 0.35])
        elbow = polar(shoulder, 1.35, up, side)
        wrist = polar(elbow, 1.2, up + bend, side)
        fig.add(capsule(shoulder, elbow, 0.3, 0.26), sleeve)
        fig.add(capsule(elbow, wrist, 0.26, 0.23), sleeve)
        fig.add(ellipse(wrist[0], wrist[1], 0.3, 0.3, 20), pal["second"])  # glove
    torso = np.array(
        [
            [-broad, 0.12],
            [broad, 0.12],
            [waist, 2.3],
            [waist + 0.1, HIP_Y],
            [-waist - 0.1, HIP_Y],
            [-waist, 2.3],
        ]
    )
    fig.add(torso, pal["suit"])
    fig.add(rect(-waist - 0.02, 2.25, waist + 0.02, 2.5), pal["accent"])  # belt
    _emblem(fig, rng, pal["accent"], pal["second"])
    fig.add(rect(-0.15, -0.2, 0.15, 0.2), pal["skin"])  # neck
    head = ellipse(0, -0.55, 0.4, 0.5)
    fig.add(head, pal["skin"])
    fig.head = head
    _face(fig, rng, pal, masked=rng.random() < 0.6)
    _hair(fig, rng, pal["hair"], behind=False)
    return fig


def robot(rng: np.random.Generator) -> Figure:
    """A boxy machine on tracks with a one-eyed dome: metal, lights, no skin, no human build."""
    metal = hsv(rng.uniform(0.5, 0.65), rng.uniform(0.0, 0.2), rng.uniform(0.55, 0.85))
    light = hsv(rng.choice([0.0, 0.33, 0.55]), 0.9, 1.0)
    fig = Figure()
    w = rng.uniform(1.6, 2.6)
    fig.add(rect(-w / 2 - 0.3, 2.4, w / 2 + 0.3, 3.2), shade(metal, 0.5))  # tracks
    for x in np.linspace(-w / 2, w / 2, 4):
        fig.add(ellipse(x, 2.8, 0.28, 0.28, 16), shade(metal, 0.8))
    fig.add(rect(-w / 2, 0.0, w / 2, 2.4), metal)
    for i in range(int(rng.integers(2, 5))):
        fig.add(ellipse(-w / 4 + i * 0.35, 0.6, 0.1, 0.1, 10), light)
    fig.add(
        capsule([w / 2, 0.9], [w / 2 + 1.2, rng.uniform(0.0, 1.6)], 0.15, 0.12), shade(metal, 0.7)
    )
    fig.add(arc(0, 0.0, 0.7, 0.75, 0, -np.pi, 20), shade(metal, 1.15))  # dome
    fig.add(ellipse(0, -0.35, 0.25, 0.18, 20), light)
    fig.add(rect(-0.04, -1.3, 0.04, -0.7), shade(metal, 0.6))
    fig.add(ellipse(0, -1.35, 0.12, 0.12, 12), light)
    return fig


def insect(rng: np.random.Generator) -> Figure:
    """Side view: head, thorax and striped abdomen in a row, six jointed legs, antennae, wings."""
    body = hsv(rng.choice([0.08, 0.15, 0.3, 0.0, 0.75]), rng.uniform(0.5, 1), rng.uniform(0.3, 0.8))
    fig = Figure()
    if rng.random() < 0.7:
        fig.add(ellipse(-0.2, -1.0, 1.2, 0.5), (215, 235, 250))
    for i in range(3):
        hip = np.array([-0.5 + i * 0.5, 0.3])
        knee = hip + np.array([rng.uniform(-0.4, 0.4), 0.7])
        fig.add(capsule(hip, knee, 0.07, 0.06), shade(body, 0.6))
        foot = knee + np.array([rng.uniform(-0.5, 0.5), 0.8])
        fig.add(capsule(knee, foot, 0.06, 0.04), shade(body, 0.6))
    fig.add(ellipse(-1.6, 0.0, 1.2, 0.7), body)  # abdomen
    for x in (-2.0, -1.5, -1.0):
        fig.add(rect(x, -0.55, x + 0.2, 0.55), shade(body, 0.4), False)
    fig.add(ellipse(0.0, 0.0, 0.6, 0.5), shade(body, 1.2))
    fig.add(ellipse(0.9, -0.1, 0.45, 0.4), body)
    fig.add(ellipse(1.05, -0.2, 0.15, 0.18, 12), (20, 20, 20))
    for dy in (-0.1, 0.1):
        fig.add(capsule([1.0, -0.45], [1.7, -1.4 + dy], 0.04, 0.03), shade(body, 0.5))
    return fig


def animal(rng: np.random.Generator) -> Figure:
    """A four-legged animal in side view with ears, snout and tail."""
    fur = hsv(rng.uniform(0.03, 0.12), rng.uniform(0.3, 0.8), rng.uniform(0.35, 0.9))
    fig = Figure()
    tail_end = [-2.6, rng.uniform(-1.5, 0.2)]
    fig.add(capsule([-1.6, -0.2], tail_end, 0.15, 0.1), fur)
    for x in (-1.2, -0.8, 0.9, 1.3):
        fig.add(capsule([x, 0.3], [x + rng.uniform(-0.2, 0.2), 1.7], 0.22, 0.17), shade(fur, 0.85))
    fig.add(ellipse(0.0, 0.0, 1.8, 0.8), fur)
    fig.add(ellipse(2.0, -0.9, 0.65, 0.55), fur)
    fig.add(np.array([[1.6, -1.3], [1.8, -2.0], [2.1, -1.35]]), shade(fur, 0.7))
    fig.add(ellipse(2.55, -0.7, 0.35, 0.25, 16), shade(fur, 1.25))
    fig.add(ellipse(2.85, -0.78, 0.09, 0.07, 10), (20, 20, 20), False)
    fig.add(ellipse(2.15, -1.0, 0.09, 0.09, 10), (20, 20, 20), False)
    return fig


def thing(rng: np.random.Generator) -> Figure:
    """An object or logo: shield, cup, car, rocket or star badge."""
    main = hsv(rng.random(), rng.uniform(0.5, 1), rng.uniform(0.5, 1))
    other = hsv(rng.random(), rng.uniform(0.3, 1), 1.0)
    fig = Figure()
    kind = rng.choice(["shield", "cup", "car", "rocket", "badge"])
    if kind == "shield":
        fig.add(
            np.concatenate([[[-1.2, -1.4], [1.2, -1.4]], arc(0, -0.2, 1.2, 1.9, 0, np.pi, 18)]),
            main,
        )
        fig.add(star(0, -0.3, 0.7, 0.3), other)
    elif kind == "cup":
        fig.add(capsule([1.0, -0.4], [1.0, 0.6], 0.5, 0.5), main)
        fig.add(np.array([[-1.0, -1.2], [1.0, -1.2], [0.7, 1.2], [-0.7, 1.2]]), main)
        fig.add(rect(-0.8, 1.2, 0.8, 1.5), other)
    elif kind == "car":
        body = [[-2.2, 0.0], [-1.8, -0.6], [-0.9, -0.7], [-0.5, -1.3], [1.0, -1.3], [1.5, -0.6]]
        fig.add(np.array([*body, [2.3, -0.4], [2.3, 0.4], [-2.2, 0.4]]), main)
        fig.add(rect(-0.3, -1.15, 0.9, -0.7), (200, 230, 255))
        for x in (-1.3, 1.4):
            fig.add(ellipse(x, 0.4, 0.5, 0.5, 20), (40, 40, 40))
    elif kind == "rocket":
        fig.add(np.array([[-0.9, 1.8], [0.0, 0.6], [0.9, 1.8]]), other)
        fig.add(
            np.concatenate(
                [arc(0, -1.0, 0.6, 1.6, np.pi, 2 * np.pi, 16), [[0.6, 1.6], [-0.6, 1.6]]]
            ),
            main,
        )
        fig.add(ellipse(0, -0.6, 0.3, 0.3, 16), (200, 230, 255))
    else:
        fig.add(star(0, 0, 1.6, 0.9, points=int(rng.integers(5, 9))), main)
        fig.add(ellipse(0, 0, 0.8, 0.8), other)
    return fig


NON_HUMAN = {"robot": robot, "insect": insect, "animal": animal, "object": thing}
