"""Geometry and drawing for the synthetic heroes.

Every shape is a polygon in "figure units" (a hero's head is one unit tall). A figure is a list
of parts drawn back to front; a similarity transform places it in the picture. The figure is
drawn at twice the output size and reduced, so edges are anti-aliased like scraped art, and
its coverage mask comes from the same polygons, so the ground truth is exact.
"""

from __future__ import annotations

import colorsys
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw

RGB = tuple[int, int, int]
Point = Sequence[float] | np.ndarray  # (x, y) in figure units
SUPERSAMPLE = 2


def ellipse(cx: float, cy: float, rx: float, ry: float, n: int = 40) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], axis=1)


def arc(
    cx: float, cy: float, rx: float, ry: float, start: float, end: float, n: int = 16
) -> np.ndarray:
    """Points along an elliptic arc, angles in radians (y grows downwards)."""
    t = np.linspace(start, end, n)
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], axis=1)


def rect(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=float)


def capsule(p0: Point, p1: Point, r0: float, r1: float, n: int = 10) -> np.ndarray:
    """A limb: a tapered bar from p0 to p1 with round ends of radius r0 and r1."""
    d = np.asarray(p1, float) - np.asarray(p0, float)
    angle = np.arctan2(d[1], d[0])
    end1 = arc(p1[0], p1[1], r1, r1, angle - np.pi / 2, angle + np.pi / 2, n)
    end0 = arc(p0[0], p0[1], r0, r0, angle + np.pi / 2, angle + 3 * np.pi / 2, n)
    return np.concatenate([end1, end0])


def star(
    cx: float, cy: float, r_out: float, r_in: float, points: int = 5, turn: float = 0.0
) -> np.ndarray:
    t = np.arange(2 * points) * np.pi / points - np.pi / 2 + turn
    r = np.where(np.arange(2 * points) % 2 == 0, r_out, r_in)
    return np.stack([cx + r * np.cos(t), cy + r * np.sin(t)], axis=1)


def polar(origin: np.ndarray, length: float, degrees_from_down: float, side: int) -> np.ndarray:
    """The end of a segment hanging from origin, rotated outwards (side -1 left, +1 right)."""
    a = np.deg2rad(degrees_from_down)
    return np.asarray(origin, float) + length * np.array([side * np.sin(a), np.cos(a)])


def hsv(h: float, s: float, v: float) -> RGB:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, min(max(s, 0), 1), min(max(v, 0), 1))
    return (round(r * 255), round(g * 255), round(b * 255))


def shade(color: RGB, factor: float) -> RGB:
    r, g, b = (int(min(255, max(0, c * factor))) for c in color)
    return r, g, b


@dataclass
class Part:
    points: np.ndarray  # (n, 2) polygon in figure units
    fill: RGB
    outline: bool = True  # cartoon parts get the outline; small details may not


@dataclass
class Figure:
    parts: list[Part] = field(default_factory=list)
    head: np.ndarray | None = None  # polygon of the head (for the head box label)

    def add(self, points: np.ndarray, fill: RGB, outline: bool = True) -> None:
        self.parts.append(Part(np.asarray(points, float), fill, outline))

    def rotated(self, degrees: float, about: tuple[float, float] = (0.0, 0.0)) -> Figure:
        a = np.deg2rad(degrees)
        m = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        c = np.asarray(about)

        def turn(p: np.ndarray) -> np.ndarray:
            return (p - c) @ m.T + c

        head = None if self.head is None else turn(self.head)
        return Figure([Part(turn(p.points), p.fill, p.outline) for p in self.parts], head)

    def bounds(self) -> tuple[float, float, float, float]:
        pts = np.concatenate([p.points for p in self.parts])
        return (*pts.min(axis=0), *pts.max(axis=0))


@dataclass(frozen=True)
class Placement:
    """Figure units -> output pixels: pixel = figure * scale + offset."""

    scale: float
    offset: tuple[float, float]

    def apply(self, points: np.ndarray) -> np.ndarray:
        return points * self.scale + np.asarray(self.offset)

    def box(self, points: np.ndarray, size: tuple[int, int]) -> list[int]:
        """Pixel bounding box [x0, y0, x1, y1] of points, clipped to the picture."""
        p = self.apply(points)
        w, h = size
        x0, y0 = np.clip(p.min(axis=0), 0, [w, h])
        x1, y1 = np.clip(p.max(axis=0), 0, [w, h])
        return [int(x0), int(y0), int(np.ceil(x1)), int(np.ceil(y1))]


def render_figure(
    figure: Figure,
    placement: Placement,
    size: tuple[int, int],
    outline: RGB | None,
    outline_units: float = 0.06,
) -> tuple[Image.Image, Image.Image]:
    """Draw the figure; return its colours (RGB) and its anti-aliased coverage mask (L).

    The colour canvas starts as the outline colour: the figure's rim is outline, so reducing
    the supersampled drawing leaves no dark or light fringe when it is composited.
    """
    w, h = size
    ss = SUPERSAMPLE
    base = outline or figure.parts[0].fill
    color = Image.new("RGB", (w * ss, h * ss), base)
    mask = Image.new("L", (w * ss, h * ss), 0)
    draw_c, draw_m = ImageDraw.Draw(color), ImageDraw.Draw(mask)
    width = max(2, round(outline_units * placement.scale * ss))
    for part in figure.parts:
        xy = (placement.apply(part.points) * ss).ravel().tolist()
        if outline is not None and part.outline:
            draw_c.polygon(xy, fill=part.fill, outline=outline, width=width)
        else:
            draw_c.polygon(xy, fill=part.fill)
        draw_m.polygon(xy, fill=255)
    return color.reduce(ss), mask.reduce(ss)
