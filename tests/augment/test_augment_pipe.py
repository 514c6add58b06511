"""AugmentPipe: identity at p = 0, the statistics of each transform, gradients, determinism."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional
from torch.utils._python_dispatch import TorchDispatchMode

from heroforge.augment import PIPES, AugmentPipe
from heroforge.augment.resample import to_device
from heroforge.config import AugmentConfig

BLIT = ("xflip", "rotate90", "xint")
GEOM = ("scale", "rotate", "aniso", "xfrac")
COLOR = ("brightness", "contrast", "lumaflip", "hue", "saturation")


def only(name: str, p: float = 1.0) -> AugmentPipe:
    """A pipe with every transform but `name` switched off."""
    pipe = "blit" if name in BLIT else "geom" if name in GEOM else "color"
    off = {other: 0.0 for other in BLIT + GEOM + COLOR if other != name}
    return AugmentPipe(pipe, p=p, **off)


def images(n: int, size: int = 16, channels: int = 3, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, channels, size, size, generator=g) * 2 - 1


def gen(seed: int = 1) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("name", sorted(PIPES))
def test_p_zero_returns_the_input_itself(name):
    x = images(4)
    out = AugmentPipe(name, p=0.0)(x, generator=gen())
    assert out is x


def test_p_one_changes_every_kind_of_image():
    x = images(8)
    out = AugmentPipe("bgc", p=1.0)(x, generator=gen())
    assert out.shape == x.shape
    assert out.dtype == x.dtype
    assert all(not torch.equal(a, b) for a, b in zip(out, x, strict=True))


def test_xflip_mirrors_about_half_the_images_exactly():
    x = images(400, size=8)
    out = only("xflip")(x, generator=gen())
    same = (out == x).flatten(1).all(1)
    flipped = (out == x.flip(3)).flatten(1).all(1)
    assert bool((same | flipped).all())
    assert 0.4 < flipped.float().mean().item() < 0.6


def test_rotate90_matches_torch_rot90_and_uses_all_four_turns():
    x = images(400, size=8)
    out = only("rotate90")(x, generator=gen())
    matches = torch.stack(
        [(out == torch.rot90(x, k, dims=(2, 3))).flatten(1).all(1) for k in range(4)], dim=1
    )
    assert bool((matches.sum(1) == 1).all())  # each image is exactly one of the four turns
    counts = matches.sum(0)
    assert bool((counts > 70).all()), counts  # about 100 each


def test_integer_translation_copies_pixels_with_reflected_borders():
    x = images(64, size=16)
    out = only("xint")(x, generator=gen())
    limit = round(0.125 * 16)
    padded = functional.pad(x, (limit,) * 4, mode="reflect")  # an independent reference
    shifts = set()
    for i in range(len(x)):
        # Only pixel values of the same image, never new ones (no interpolation, no fill).
        assert bool(torch.isin(out[i], x[i]).all())
        found = [
            (dx, dy)
            for dy in range(-limit, limit + 1)
            for dx in range(-limit, limit + 1)
            if torch.equal(
                out[i], padded[i, :, limit - dy : limit - dy + 16, limit - dx : limit - dx + 16]
            )
        ]
        assert len(found) == 1
        shifts.add(found[0])
    assert len(shifts) > 10  # the shifts vary over the whole range


def test_blit_on_non_square_images_keeps_their_shape():
    x = torch.rand(32, 3, 8, 12) * 2 - 1
    out = AugmentPipe("blit", p=1.0, xint=0)(x, generator=gen())
    assert out.shape == x.shape
    for a, b in zip(out, x, strict=True):  # only flips and 180-degree turns are possible
        assert any(torch.equal(a, c) for c in (b, b.flip(2), b.flip(1), b.flip(1).flip(2)))


@pytest.mark.parametrize("name", ["bg", "geom"])
def test_geometric_warp_keeps_a_constant_image_constant(name):
    x = torch.linspace(-1, 1, 16).view(16, 1, 1, 1).expand(16, 3, 24, 24).contiguous()
    out = AugmentPipe(name, p=1.0)(x, generator=gen())
    assert torch.allclose(out, x, atol=1e-5)  # reflect padding and filters leak nothing


def test_geometric_transforms_hit_with_probability_p():
    x = images(400, size=8)
    for name in GEOM:  # rotation is drawn twice, with its chance adjusted to give p overall
        out = only(name, p=0.5)(x, generator=gen())
        changed = (out != x).flatten(1).any(1).float().mean().item()
        assert 0.4 < changed < 0.6, name


def test_geometric_warp_moves_content_as_the_matrix_says():
    from heroforge.augment.resample import affine_resample

    size = 32
    coords = torch.arange(size) + 0.5
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")

    def smooth(dx: float, dy: float) -> torch.Tensor:
        wave = torch.sin(2 * math.pi * (xx - dx) / 16) * torch.cos(2 * math.pi * (yy - dy) / 13)
        return wave.view(1, 1, size, size)

    # The sampling matrix maps output to input coordinates: translate by -t moves content by t.
    shift = torch.tensor([[[1.0, 0, -2.5], [0, 1, 1.25], [0, 0, 1]]])
    out = affine_resample(smooth(0, 0), shift)
    inner = (slice(None), slice(None), slice(6, -6), slice(6, -6))
    assert torch.allclose(out[inner], smooth(2.5, -1.25)[inner], atol=0.03)
    same = affine_resample(smooth(0, 0), torch.eye(3).view(1, 3, 3))
    assert torch.allclose(same[inner], smooth(0, 0)[inner], atol=0.02)


def test_brightness_adds_one_normal_offset_per_image():
    x = images(2000, size=4)
    out = only("brightness")(x, generator=gen())
    delta = out - x
    offset = delta.flatten(1).mean(1)
    assert torch.allclose(delta, offset.view(-1, 1, 1, 1).expand_as(delta), atol=1e-5)
    assert abs(offset.mean().item()) < 0.02
    assert 0.18 < offset.std().item() < 0.22


def test_contrast_scales_by_a_lognormal_factor():
    x = images(2000, size=4).clamp(min=0.05)  # positive values keep the ratio well defined
    out = only("contrast")(x, generator=gen())
    log_ratio = torch.log2(out / x)
    per_image = log_ratio.flatten(1).mean(1)
    assert torch.allclose(log_ratio.flatten(1), per_image.view(-1, 1).expand(-1, 48), atol=1e-4)
    assert 0.45 < per_image.std().item() < 0.55


def test_hue_and_saturation_keep_grey_images_grey():
    grey = images(64, size=8, channels=1).expand(64, 3, 8, 8)
    for name in ("hue", "saturation"):
        out = only(name)(grey, generator=gen())
        assert torch.allclose(out, grey, atol=1e-5), name


def test_hue_keeps_luma_and_chroma_length_and_saturation_keeps_luma():
    x = images(256, size=4)
    luma = x.mean(1)
    chroma = (x - luma.unsqueeze(1)).norm(dim=1)
    hue = only("hue")(x, generator=gen())
    assert torch.allclose(hue.mean(1), luma, atol=1e-5)
    assert torch.allclose((hue - hue.mean(1, keepdim=True)).norm(dim=1), chroma, atol=1e-5)
    assert (hue - x).abs().amax().item() > 0.5
    saturated = only("saturation")(x, generator=gen())
    assert torch.allclose(saturated.mean(1), luma, atol=1e-5)


def test_luma_flip_negates_about_half_the_grey_images():
    grey = images(400, size=4, channels=1).expand(400, 3, 4, 4)
    out = only("lumaflip")(grey, generator=gen())
    negated = torch.isclose(out, -grey, atol=1e-5).flatten(1).all(1)
    kept = torch.isclose(out, grey, atol=1e-5).flatten(1).all(1)
    assert bool((negated | kept).all())
    assert 0.4 < negated.float().mean().item() < 0.6


def test_single_channel_images_get_luma_only_colour_changes():
    x = images(1000, size=4, channels=1)
    out = only("brightness")(x, generator=gen())
    assert 0.18 < (out - x).flatten(1).mean(1).std().item() < 0.22
    assert AugmentPipe("bgc", p=1.0)(x, generator=gen()).shape == x.shape
    with pytest.raises(ValueError, match="1 or 3 channels"):
        AugmentPipe("color", p=1.0)(images(2, channels=4), generator=gen())


@pytest.mark.parametrize("name", sorted(PIPES))
def test_gradients_flow_back_to_the_images(name):
    x = images(8).requires_grad_()
    out = AugmentPipe(name, p=1.0)(x, generator=gen())
    out.square().sum().backward()
    assert x.grad is not None
    assert bool(torch.isfinite(x.grad).all())
    assert x.grad.abs().sum().item() > 0


def test_same_generator_seed_gives_the_same_batch():
    x = images(8)
    pipe = AugmentPipe("bgc", p=0.7)
    assert torch.equal(pipe(x, generator=gen(5)), pipe(x, generator=gen(5)))
    assert not torch.equal(pipe(x, generator=gen(5)), pipe(x, generator=gen(6)))
    torch.manual_seed(11)
    first = pipe(x)
    torch.manual_seed(11)
    assert torch.equal(pipe(x), first)


def test_p_is_a_buffer_saved_with_the_state():
    pipe = AugmentPipe("bgc")
    pipe.set_p(0.25)
    restored = AugmentPipe("bgc")
    restored.load_state_dict(pipe.state_dict())
    assert float(restored.p) == 0.25
    x = images(16)
    assert torch.equal(restored(x, generator=gen(2)), pipe(x, generator=gen(2)))  # p in use
    holder = torch.nn.Sequential(AugmentPipe("bgc"))
    holder.load_state_dict({"0.p": torch.tensor(0.5)})  # a pipe inside a loaded network
    assert "p=0.5000" in repr(holder)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        pipe.set_p(1.5)


def test_built_from_the_augment_config():
    assert float(AugmentPipe.from_config(AugmentConfig(mode="fixed", p=0.3)).p) == pytest.approx(
        0.3
    )
    assert float(AugmentPipe.from_config(AugmentConfig(mode="none", p=0.3)).p) == 0.0
    pipe = AugmentPipe.from_config(AugmentConfig(pipe="bg", p=0.1))
    assert pipe.strength["hue"] == 0
    assert pipe.strength["xflip"] == 1
    with pytest.raises(ValueError, match="unknown augment pipe"):
        AugmentPipe("bgcfn")


def test_few_shapes_mode_gives_the_same_images(monkeypatch):
    """Where cuDNN autotunes every new shape (CUDA with benchmark on), the geometric transforms
    pad to multiples of 16 and resample a power of two of images; the result must not change.
    Forced on here: the mode is CUDA-only but its arithmetic is not."""
    from heroforge.augment import resample

    x = images(7, size=24)
    pipe = AugmentPipe("geom", p=0.6)
    plain = pipe(x, generator=gen(3))
    shapes = []
    original = resample._upsample2

    def record(images, taps):
        shapes.append(tuple(images.shape))
        return original(images, taps)

    monkeypatch.setattr(resample, "autotuned", lambda images: True)
    monkeypatch.setattr(resample, "_upsample2", record)
    few = pipe(x, generator=gen(3))
    n, _, h, w = shapes[0]
    assert n in (1, 2, 4, 8)
    assert (h - 24) % 32 == 0
    assert (w - 24) % 32 == 0
    assert torch.allclose(few, plain, atol=1e-5)


@pytest.fixture
def fake_pinning(monkeypatch) -> list[torch.Tensor]:
    """pin_memory needs CUDA: on this CPU it makes a copy, recorded in the list returned (kept
    alive, so that their addresses identify them)."""
    pinned: list[torch.Tensor] = []

    def pin_memory(tensor: torch.Tensor) -> torch.Tensor:
        pinned.append(tensor.clone())
        return pinned[-1]

    monkeypatch.setattr(torch.Tensor, "pin_memory", pin_memory)
    return pinned


@pytest.mark.parametrize("few_shapes", [False, True])
def test_random_parameters_never_read_values_from_the_images_device(
    monkeypatch, fake_pinning, few_shapes
):
    """On a GPU, reading a value back from the device (which images changed, how much to pad,
    p) makes the host wait for all queued work. The pipe works those out on the host: on the
    meta device, which holds no values, every such read would raise."""
    from heroforge.augment import resample

    monkeypatch.setattr(resample, "autotuned", lambda images: few_shapes)
    pipe = AugmentPipe("bgc", p=0.9).to("meta")
    x = torch.empty(8, 3, 32, 32, device="meta")
    for generator in (gen(1), None):
        out = pipe(x, generator=generator)
        assert out.device.type == "meta"
        assert out.shape == x.shape


class _HostCopies(TorchDispatchMode):
    """Records every copy of a host tensor to another device: (pinned source, non_blocking)."""

    def __init__(self, pinned: list[torch.Tensor]) -> None:
        super().__init__()
        self.pinned = pinned
        self.copies: list[tuple[bool, bool]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func.overloadpacket is torch.ops.aten._to_copy:
            source, target = args[0], kwargs.get("device", args[0].device)
            if source.device.type == "cpu" and torch.device(target).type != "cpu":
                pinned = any(source.data_ptr() == p.data_ptr() for p in self.pinned)
                self.copies.append((pinned, bool(kwargs.get("non_blocking", False))))
        return func(*args, **kwargs)


def test_small_host_tensors_reach_the_device_asynchronously_from_pinned_memory(fake_pinning):
    # A copy from pageable memory may be synchronous on CUDA (the host would wait for the GPU).
    # CPU stand-in: images on the "meta" device, pin_memory recorded (fake_pinning).
    x = torch.empty(8, 3, 16, 16, device="meta")
    with _HostCopies(fake_pinning) as recorder:
        out = AugmentPipe("bgc", p=1.0)(x, generator=gen())
    assert out.device.type == "meta"
    assert len(recorder.copies) >= 8  # blit's four, the warp's and the colour matrix's
    assert all(copy == (True, True) for copy in recorder.copies)  # (pinned, non_blocking)


def test_on_the_cpu_the_host_tensors_are_used_as_they_are():
    t = torch.arange(4.0)
    assert to_device(t, torch.device("cpu")) is t
    assert to_device(t, torch.device("cpu"), torch.float64).dtype == torch.float64
