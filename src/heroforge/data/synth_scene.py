"""Backgrounds and the photographic look for the synthetic set.

Backgrounds range from trivially separable (plain, gradient) to hard (a cluttered scene that
reuses the character's own colours and touches it). The photographic finish turns flat cartoon
colour into shaded, noisy, textured colour, the "too realistic" outlier case.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from heroforge.data.synth_shapes import RGB, hsv, shade

BACKGROUNDS = ("plain", "gradient", "textured", "cluttered")


def _smooth_noise(rng: np.random.Generator, size: tuple[int, int], cells: int) -> np.ndarray:
    """Low-frequency noise in [0, 1]: a small random grid upsampled bicubically."""
    w, h = size
    grid = rng.random((cells, max(2, round(cells * w / h)))).astype(np.float32)
    img = Image.fromarray((grid * 255).astype(np.uint8)).resize((w, h), Image.Resampling.BICUBIC)
    return np.asarray(img, np.float32) / 255.0


def _two_colors(rng: np.random.Generator) -> tuple[RGB, RGB]:
    h = rng.random()
    a = hsv(h, rng.uniform(0.1, 0.7), rng.uniform(0.6, 1.0))
    b = hsv(h + rng.uniform(-0.2, 0.2), rng.uniform(0.2, 0.9), rng.uniform(0.3, 0.9))
    return a, b


def plain(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    w, h = size
    roll = rng.random()
    color = (
        (255, 255, 255)
        if roll < 0.45
        else hsv(rng.random(), rng.uniform(0, 0.6), rng.uniform(0.5, 1))
    )
    return np.broadcast_to(np.array(color, np.uint8), (h, w, 3)).copy()


def gradient(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    w, h = size
    a, b = (np.array(c, np.float32) for c in _two_colors(rng))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if rng.random() < 0.5:  # linear, any direction
        angle = rng.uniform(0, 2 * np.pi)
        t = xx * np.cos(angle) + yy * np.sin(angle)
    else:  # radial from a random centre
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        t = np.hypot(xx - cx, yy - cy)
    t = (t - t.min()) / max(float(np.ptp(t)), 1e-6)
    return (a + (b - a) * t[..., None]).astype(np.uint8)


def textured(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """Comic-book patterns: halftone dots, stripes, checks, sunburst rays or cloudy noise."""
    w, h = size
    a, b = _two_colors(rng)
    img = Image.new("RGB", size, a)
    draw = ImageDraw.Draw(img)
    style = rng.choice(["dots", "stripes", "checks", "rays", "clouds"])
    step = int(rng.integers(12, 40))
    if style == "dots":
        r = step * rng.uniform(0.15, 0.4)
        for y in range(0, h + step, step):
            for x in range((y // step % 2) * step // 2, w + step, step):
                draw.ellipse([x - r, y - r, x + r, y + r], fill=b)
    elif style == "stripes":
        for x in range(-h, w + h, step * 2):
            draw.polygon([(x, 0), (x + step, 0), (x + step - h, h), (x - h, h)], fill=b)
    elif style == "checks":
        for y in range(0, h, step):
            for x in range((y // step % 2) * step, w, 2 * step):
                draw.rectangle([x, y, x + step - 1, y + step - 1], fill=b)
    elif style == "rays":
        cx, cy, n = rng.uniform(0, w), rng.uniform(0, h), int(rng.integers(10, 24))
        far = 2 * (w + h)
        for i in range(n):
            t0, t1 = 2 * np.pi * i / n, 2 * np.pi * (i + 0.5) / n
            edge = [(cx + far * np.cos(t), cy + far * np.sin(t)) for t in (t0, t1)]
            draw.polygon([(cx, cy), *edge], fill=b)
    else:
        t = _smooth_noise(rng, size, int(rng.integers(4, 10)))[..., None]
        return (np.array(a) * (1 - t) + np.array(b) * t).astype(np.uint8)
    return np.asarray(img).copy()


def cluttered(rng: np.random.Generator, size: tuple[int, int], palette: list[RGB]) -> np.ndarray:
    """A busy city scene whose shapes reuse the character's colours, so edges are ambiguous."""
    w, h = size
    base = gradient(rng, size)
    img = Image.fromarray(base)
    draw = ImageDraw.Draw(img)
    colors = [
        *palette,
        *(hsv(rng.random(), rng.uniform(0.3, 1), rng.uniform(0.3, 1)) for _ in range(4)),
    ]
    x = -rng.uniform(0, 60)
    while x < w:  # skyline
        bw, top = rng.uniform(0.08, 0.25) * w, rng.uniform(0.15, 0.7) * h
        c = colors[rng.integers(len(colors))]
        draw.rectangle([x, top, x + bw, h], fill=c, outline=shade(c, 0.3), width=2)
        for wy in np.arange(top + 10, h, 24):
            for wx in np.arange(x + 6, x + bw - 10, 18):
                if rng.random() < 0.6:
                    draw.rectangle([wx, wy, wx + 8, wy + 12], fill=shade(c, 1.4))
        x += bw + rng.uniform(-10, 15)
    for _ in range(int(rng.integers(15, 40))):  # debris, balloons, signs
        c = colors[rng.integers(len(colors))]
        cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(0.02, 0.12) * min(w, h)
        if rng.random() < 0.5:
            draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=c, outline=(20, 20, 20), width=3)
        else:
            draw.polygon(
                [(cx, cy - r), (cx + r, cy + r), (cx - r, cy + r * 0.6)],
                fill=c,
                outline=(20, 20, 20),
            )
    return np.asarray(img).copy()


def background(
    rng: np.random.Generator, kind: str, size: tuple[int, int], palette: list[RGB]
) -> np.ndarray:
    if kind == "plain":
        return plain(rng, size)
    if kind == "gradient":
        return gradient(rng, size)
    if kind == "textured":
        return textured(rng, size)
    return cluttered(rng, size, palette)


def photographic_background(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """An out-of-focus photo: smooth colour fields, soft blobs of light, sensor noise."""
    w, h = size
    a, b = (np.array(c, np.float32) for c in _two_colors(rng))
    t = _smooth_noise(rng, size, int(rng.integers(3, 7)))[..., None]
    img = a * (1 - t) + b * t
    light = _smooth_noise(rng, size, int(rng.integers(8, 16)))[..., None]
    img = img * (0.75 + 0.5 * light)
    return np.clip(img + rng.normal(0, 6, (h, w, 1)), 0, 255).astype(np.uint8)


def photographic_finish(rng: np.random.Generator, rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Shade the flat figure like a lit 3D body and add fabric/skin texture and sensor noise."""
    h, w, _ = rgb.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    light = (xx * np.cos(angle) + yy * np.sin(angle)) / max(w, h)
    light = 0.75 + 0.5 * (light - light.min()) / max(float(np.ptp(light)), 1e-6)
    texture = _smooth_noise(rng, (w, h), int(rng.integers(30, 60)))
    soft = np.asarray(
        Image.fromarray(mask).filter(ImageFilter.GaussianBlur(max(2, w // 60))), np.float32
    )
    body = 0.7 + 0.3 * soft / 255.0  # darker towards the silhouette's rim: a rounded form
    out = rgb.astype(np.float32) * (light * body * (0.9 + 0.2 * texture))[..., None]
    out += rng.normal(0, 7, out.shape)
    return np.clip(out, 0, 255).astype(np.uint8)
