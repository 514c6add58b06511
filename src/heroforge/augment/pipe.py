"""The ADA augmentation pipe: random transforms shown to the discriminator, reals and fakes alike.

Each transform hits each image independently with probability p (times its strength). As long
as p stays below about 0.8 they are "non-leaking" (Karras et al. 2020, arXiv 2006.06676,
section 2): the augmented distribution still determines the clean one, so the generator learns
clean images although D only ever sees augmented ones. The magnitudes below are those of the
paper's appendix B.

The three groups run in order, each in a single step: pixel blits (exact copies), one composed
geometric warp (resampled once, with a low-pass filter), one 4x4 colour matrix.

The random parameters are drawn and composed on the host and reach the images' device as a few
small tensors, copied from pinned memory (resample.to_device): on a GPU, deciding which images
change and how much to pad them never waits for the device to finish its queued work.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
from torch import nn

from heroforge.augment import resample
from heroforge.augment.resample import affine_resample, blit, to_device

if TYPE_CHECKING:
    from heroforge.config import AugmentConfig

BLIT = ("xflip", "rotate90", "xint")
GEOM = ("scale", "rotate", "aniso", "xfrac")
COLOR = ("brightness", "contrast", "lumaflip", "hue", "saturation")
PIPES: dict[str, tuple[str, ...]] = {
    "blit": BLIT,
    "geom": GEOM,
    "color": COLOR,
    "bg": BLIT + GEOM,
    "bgc": BLIT + GEOM + COLOR,
}

XINT_MAX = 0.125  # integer translation: uniform within +-0.125 of the image size
SCALE_STD = 0.2  # isotropic and anisotropic scaling: log2 of the factor ~ N(0, 0.2^2)
XFRAC_STD = 0.125  # fractional translation: N(0, 0.125^2) of the image size
BRIGHTNESS_STD = 0.2  # added to every channel, images in [-1, 1]
CONTRAST_STD = 0.5  # log2 of the contrast factor
SATURATION_STD = 1.0  # log2 of the saturation factor

# The grey (luma) axis of RGB; hue rotates around it, luma flip and saturation act along it.
_LUMA = torch.full((3,), 1 / math.sqrt(3))
# The cross product with the luma axis as a matrix: _LUMA_CROSS @ v == cross(_LUMA, v).
_LUMA_CROSS = torch.tensor([[0.0, -1, 1], [1, 0, -1], [-1, 1, 0]]) / math.sqrt(3)


class _Draws:
    """Random numbers for one batch on the host, drawn from `generator` (else the global CPU
    RNG), so a seeded generator replays the same batch on any device."""

    def __init__(self, count: int, generator: torch.Generator | None):
        self.count = count
        self.generator = generator
        self.source = generator.device if generator is not None else torch.device("cpu")

    def uniform(self, *tail: int) -> torch.Tensor:
        return torch.rand(self.count, *tail, generator=self.generator, device=self.source).cpu()

    def normal(self, *tail: int) -> torch.Tensor:
        return torch.randn(self.count, *tail, generator=self.generator, device=self.source).cpu()

    def integers(self, high: int) -> torch.Tensor:
        values = torch.randint(high, (self.count,), generator=self.generator, device=self.source)
        return values.cpu()


class AugmentPipe(nn.Module):
    """Augments NCHW images in [-1, 1]; p is a buffer so it is saved and can be set by ADA.

    Usage: `pipe = AugmentPipe("bgc", p=0.2)`, `d_input = pipe(images, generator=g)`. The
    result is differentiable w.r.t. the images, so D's gradient reaches G through it; p = 0
    returns the input tensor itself. Colour transforms need 1 (grey: brightness, contrast and
    luma flip only) or 3 channels; quarter turns of non-square images are limited to 180 degrees.
    """

    p: torch.Tensor  # a buffer, declared for the type checker

    def __init__(
        self,
        pipe: str = "bgc",  # which transforms are used: bgc, bg, blit, geom or color
        p: float = 0.0,  # probability of each transform (times its strength)
        *,
        xflip: float = 1.0,  # x-flip; a chosen image is mirrored with probability 1/2
        rotate90: float = 1.0,  # rotation by a uniformly chosen multiple of 90 degrees
        xint: float = 1.0,  # translation by whole pixels, with reflected borders
        scale: float = 1.0,  # isotropic scaling
        rotate: float = 1.0,  # arbitrary rotation, drawn before and after anisotropic scaling
        aniso: float = 1.0,  # anisotropic scaling (x by s, y by 1/s)
        xfrac: float = 1.0,  # translation by fractions of a pixel
        brightness: float = 1.0,  # offset added to all channels
        contrast: float = 1.0,  # factor on all channels
        lumaflip: float = 1.0,  # luma inverted, chroma kept; a chosen image flips with prob 1/2
        hue: float = 1.0,  # rotation of the colours around the grey axis
        saturation: float = 1.0,  # factor on the distance from the grey axis
    ) -> None:
        super().__init__()
        if pipe not in PIPES:
            raise ValueError(f"unknown augment pipe {pipe!r}; pipes: {', '.join(PIPES)}")
        given = dict(xflip=xflip, rotate90=rotate90, xint=xint, scale=scale, rotate=rotate)
        given |= dict(aniso=aniso, xfrac=xfrac, brightness=brightness, contrast=contrast)
        given |= dict(lumaflip=lumaflip, hue=hue, saturation=saturation)
        if any(v < 0 for v in given.values()):
            raise ValueError(f"augment strengths must be >= 0, got {given}")
        self.pipe = pipe
        # Transforms outside the pipe get strength 0: they draw no random numbers at all.
        self.strength = {name: v if name in PIPES[pipe] else 0.0 for name, v in given.items()}
        self.register_buffer("p", torch.tensor(0.0))
        # p as a Python number too: reading the buffer on a GPU would wait for the device
        self._p = 0.0
        self.register_load_state_dict_post_hook(type(self)._remember_p)
        self.set_p(p)

    @classmethod
    def from_config(cls, config: AugmentConfig) -> AugmentPipe:
        """The pipe of the [augment] section; mode "none" means p = 0."""
        return cls(config.pipe, p=0.0 if config.mode == "none" else config.p)

    def set_p(self, p: float) -> None:
        if not 0 <= p <= 1:
            raise ValueError(f"augment probability p must be in [0, 1], got {p}")
        self.p.fill_(p)
        self._p = float(p)

    def _remember_p(self, _incompatible_keys: object = None) -> None:
        self._p = float(self.p)

    def extra_repr(self) -> str:
        return f"pipe={self.pipe!r}, p={self._p:.4f}"

    def forward(
        self, images: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        p = self._p
        if p == 0:
            return images
        if images.ndim != 4:
            raise ValueError(f"expected NCHW images, got shape {tuple(images.shape)}")
        draws = _Draws(images.shape[0], generator)
        if any(self.strength[name] for name in BLIT):
            images = self._blit(images, p, draws)
        if any(self.strength[name] for name in GEOM):
            images = self._geom(images, p, draws)
        if any(self.strength[name] for name in COLOR):
            images = self._color(images, p, draws)
        return images

    def _draw(
        self,
        name: str,
        p: float,
        draws: _Draws,
        sample: Callable[[], torch.Tensor],
        neutral: float,
        tail: tuple[int, ...] = (),
    ) -> torch.Tensor:
        """[N, *tail] values on the host: `sample()` where transform `name` hits, `neutral`
        elsewhere."""
        chance = min(p * self.strength[name], 1.0)
        if chance == 0:
            return torch.full((draws.count, *tail), neutral)
        if name == "rotate":
            # Rotation is drawn twice; this chance per draw rotates an image at least once
            # with probability p, as the paper prescribes.
            chance = 1 - math.sqrt(1 - chance)
        hit = draws.uniform() < chance
        return torch.where(hit.view(-1, *[1] * len(tail)), sample(), neutral)

    def _blit(self, images: torch.Tensor, p: float, draws: _Draws) -> torch.Tensor:
        _, _, h, w = images.shape
        flip = self._draw("xflip", p, draws, lambda: draws.integers(2).float(), 0.0) > 0
        turns = self._draw("rotate90", p, draws, lambda: draws.integers(4).float(), 0.0).long()
        if h != w:
            turns = turns & 2  # a quarter turn would change the shape: keep 0 and 180 degrees
        shift = self._draw("xint", p, draws, lambda: draws.uniform(2) * 2 - 1, 0.0, (2,))
        shift_x = torch.round(shift[:, 0] * XINT_MAX * w).long()
        shift_y = torch.round(shift[:, 1] * XINT_MAX * h).long()
        return blit(images, flip, turns, shift_x, shift_y)

    def _geom(self, images: torch.Tensor, p: float, draws: _Draws) -> torch.Tensor:
        """Compose the inverse (output -> input) matrix, then resample the changed images once."""
        n, _, h, w = images.shape
        inverse = torch.eye(3).repeat(n, 1, 1)
        # The forward warp is: isotropic scale, rotate, anisotropic scale, rotate, translate.
        # Its inverse undoes them in reverse order, so each step multiplies on the right.
        s = self._draw("scale", p, draws, lambda: 2 ** (draws.normal() * SCALE_STD), 1.0)
        inverse = inverse @ _scale2d(1 / s, 1 / s)
        theta = self._draw("rotate", p, draws, lambda: (draws.uniform() * 2 - 1) * math.pi, 0.0)
        inverse = inverse @ _rotate2d(-theta)
        s = self._draw("aniso", p, draws, lambda: 2 ** (draws.normal() * SCALE_STD), 1.0)
        inverse = inverse @ _scale2d(1 / s, s)
        theta = self._draw("rotate", p, draws, lambda: (draws.uniform() * 2 - 1) * math.pi, 0.0)
        inverse = inverse @ _rotate2d(-theta)
        t = self._draw("xfrac", p, draws, lambda: draws.normal(2) * XFRAC_STD, 0.0, (2,))
        inverse = inverse @ _translate2d(-t[:, 0] * w, -t[:, 1] * h)
        inverse = inverse.to(images.dtype)

        # Untouched images skip resampling, whose filters would blur them slightly.
        changed = (inverse != torch.eye(3)).flatten(1).any(1)
        index = changed.nonzero().squeeze(1)
        if index.numel() == 0:
            return images
        count = index.numel()
        if resample.autotuned(images):  # a power of two of images (the first as filler)
            index = torch.cat([index, index[:1].expand(2 ** math.ceil(math.log2(count)) - count)])
        on_device = to_device(index, images.device)
        warped = affine_resample(images.index_select(0, on_device), inverse.index_select(0, index))
        return images.index_copy(0, on_device[:count], warped[:count])

    def _color(self, images: torch.Tensor, p: float, draws: _Draws) -> torch.Tensor:
        n, c, _, _ = images.shape
        if c not in (1, 3):
            raise ValueError(f"colour augmentation needs 1 or 3 channels, got {c}")
        eye = torch.eye(3).expand(n, 3, 3)
        luma = _LUMA
        along_luma = torch.outer(luma, luma)  # projection onto the grey axis
        # Each step acts on the colours the previous steps produced: multiply on the left.
        b = self._draw("brightness", p, draws, lambda: draws.normal() * BRIGHTNESS_STD, 0.0)
        matrix = _color_matrix(eye, b.view(n, 1).expand(n, 3))
        k = self._draw("contrast", p, draws, lambda: 2 ** (draws.normal() * CONTRAST_STD), 1.0)
        matrix = _color_matrix(eye * k.view(n, 1, 1)) @ matrix
        flip = self._draw("lumaflip", p, draws, lambda: draws.integers(2).float(), 0.0)
        matrix = _color_matrix(eye - 2 * flip.view(n, 1, 1) * along_luma) @ matrix
        if c == 1:
            # Every step so far maps grey to grey (luma flip negates it); hue and saturation
            # would leave grey unchanged, so they are not drawn. Gain and offset of grey:
            matrix = to_device(matrix, images.device, images.dtype)
            gain = matrix[:, :3, :3].sum(2).mean(1).view(n, 1, 1, 1)
            return images * gain + matrix[:, :3, 3].mean(1).view(n, 1, 1, 1)
        theta = self._draw("hue", p, draws, lambda: (draws.uniform() * 2 - 1) * math.pi, 0.0)
        matrix = _color_matrix(_rotate_around_luma(theta)) @ matrix
        s = self._draw("saturation", p, draws, lambda: 2 ** (draws.normal() * SATURATION_STD), 1.0)
        matrix = _color_matrix(along_luma + (eye - along_luma) * s.view(n, 1, 1)) @ matrix
        matrix = to_device(matrix, images.device, images.dtype)
        mixed = torch.einsum("nij,njhw->nihw", matrix[:, :3, :3], images)
        return mixed + matrix[:, :3, 3].view(n, 3, 1, 1)


def _matrix(rows: list[list[torch.Tensor | float]], like: torch.Tensor) -> torch.Tensor:
    """An [N, R, C] matrix from rows of per-image [N] tensors or constants."""
    entries = [
        [torch.as_tensor(v, dtype=like.dtype, device=like.device).expand_as(like) for v in r]
        for r in rows
    ]
    return torch.stack([torch.stack(r, dim=-1) for r in entries], dim=-2)


def _scale2d(sx: torch.Tensor, sy: torch.Tensor) -> torch.Tensor:
    return _matrix([[sx, 0, 0], [0, sy, 0], [0, 0, 1]], sx)


def _rotate2d(theta: torch.Tensor) -> torch.Tensor:
    cos, sin = torch.cos(theta), torch.sin(theta)
    return _matrix([[cos, -sin, 0], [sin, cos, 0], [0, 0, 1]], theta)


def _translate2d(tx: torch.Tensor, ty: torch.Tensor) -> torch.Tensor:
    return _matrix([[1, 0, tx], [0, 1, ty], [0, 0, 1]], tx)


def _rotate_around_luma(theta: torch.Tensor) -> torch.Tensor:
    """[N, 3, 3] rotations by theta around the grey axis (Rodrigues' formula)."""
    luma, cross = _LUMA.to(theta.device), _LUMA_CROSS.to(theta.device)
    cos, sin = torch.cos(theta).view(-1, 1, 1), torch.sin(theta).view(-1, 1, 1)
    eye = torch.eye(3, device=theta.device)
    return cos * eye + sin * cross + (1 - cos) * torch.outer(luma, luma)


def _color_matrix(linear: torch.Tensor, shift: torch.Tensor | None = None) -> torch.Tensor:
    """[N, 4, 4] homogeneous colour transform from an [N, 3, 3] linear part and an [N, 3] shift."""
    n = linear.shape[0]
    matrix = torch.eye(4, device=linear.device).repeat(n, 1, 1)
    matrix[:, :3, :3] = linear
    if shift is not None:
        matrix[:, :3, 3] = shift
    return matrix
