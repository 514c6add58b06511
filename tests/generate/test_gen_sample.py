"""Seeds -> heroes: the official seed and pixel rules, determinism, files and metadata."""

import numpy as np
import pytest
import torch
from PIL import Image

from helpers.networks import make_generator
from heroforge.config import load_config
from heroforge.errors import UserError
from heroforge.generate.latents import seed_ws, seed_z
from heroforge.generate.model import wrap_generator
from heroforge.generate.sample import generate_images, synthesize, write_seed_images


def official(gen, seed, psi=1.0, label=None):
    """What the official generate.py computes for one seed, step by step."""
    z = torch.from_numpy(np.random.RandomState(seed).randn(1, gen.z_dim))
    with torch.no_grad():
        img = gen(z, label, truncation_psi=psi, noise_mode="const")
    return (img.permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8)[0].numpy()


def pixels(images):
    return [np.asarray(img) for img in images]


def test_seed_z_is_numpy_randomstate_exactly():
    z = seed_z([0, 42, 2**32 - 1], 64)
    for row, seed in zip(z, [0, 42, 2**32 - 1], strict=True):
        assert np.array_equal(row, np.random.RandomState(seed).randn(1, 64)[0])


def test_pictures_match_the_official_recipe(model):
    seeds = [0, 7, 4000]
    for psi in (1.0, 0.7):
        images = pixels(generate_images(model, seeds, truncation_psi=psi, batch_size=2))
        for seed, img in zip(seeds, images, strict=True):
            assert img.shape == (32, 32, 3)
            # batching may move a rounding by one grey level, never more
            assert np.abs(img.astype(int) - official(model.G, seed, psi)).max() <= 1


def test_same_seed_same_bytes_and_different_seeds_differ(model, tmp_path):
    first = write_seed_images(model, [5, 6], tmp_path / "a")
    again = write_seed_images(model, [5, 6], tmp_path / "b")
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in again]
    assert first[0].read_bytes() != first[1].read_bytes()
    assert np.abs(np.asarray(Image.open(first[0]), int) - Image.open(first[1])).mean() > 1


def test_truncation_zero_draws_the_average_hero_for_every_seed(model):
    a, b = pixels(generate_images(model, [1, 2], truncation_psi=0.0))
    assert np.array_equal(a, b)
    assert not np.array_equal(*pixels(generate_images(model, [1, 2], truncation_psi=0.5)))


def test_random_noise_is_seeded_per_seed(model):
    alone = pixels(generate_images(model, [3], noise_mode="random"))[0]
    batched = pixels(generate_images(model, [1, 2, 3], noise_mode="random"))[2]
    assert np.array_equal(alone, batched)
    const = pixels(generate_images(model, [3], noise_mode="const"))[0]
    none = pixels(generate_images(model, [3], noise_mode="none"))[0]
    assert not np.array_equal(alone, const)
    assert not np.array_equal(const, none)
    state = torch.random.get_rng_state()
    synthesize(model, seed_ws(model, [3]), "random")
    assert torch.equal(state, torch.random.get_rng_state())  # the caller's stream untouched


def test_files_are_named_by_seed_and_carry_their_settings(model, tmp_path):
    paths = write_seed_images(
        model, [42, 7, 12345, 1, 2], tmp_path, truncation_psi=0.7, grid=True, batch_size=2
    )
    names = [p.name for p in paths]
    assert names == [
        "seed0042.png",
        "seed0007.png",
        "seed12345.png",
        "seed0001.png",
        "seed0002.png",
        "grid.png",
    ]
    text = Image.open(paths[0]).text
    assert text["seed"] == "42"
    assert text["truncation_psi"] == "0.7"
    assert text["noise_mode"] == "const"
    assert text["model"] == str(model.source)
    assert text["network"] == "G_ema"
    assert text["Software"].startswith("heroforge")
    grid = Image.open(paths[-1])
    assert grid.size == (3 * 32, 2 * 32)  # 5 seeds: 3 columns, 2 rows
    assert np.array_equal(np.asarray(grid)[:32, 32:64], np.asarray(Image.open(paths[1])))


def test_conditional_models_need_a_valid_class(tmp_path):
    gen, _ = make_generator(c_dim=3)
    model = wrap_generator(gen)
    label = torch.eye(3)[[2]]
    img = pixels(generate_images(model, [9], class_idx=2))[0]
    assert np.abs(img.astype(int) - official(gen, 9, label=label)).max() <= 1
    with pytest.raises(UserError, match="choose --class 0 to 2"):
        generate_images(model, [9])
    with pytest.raises(UserError, match="does not exist"):
        generate_images(model, [9], class_idx=3)


def test_bad_settings_and_outdirs_are_one_line_errors(model, tmp_path):
    cases = [
        ({"class_idx": 0}, "for conditional models"),
        ({"noise_mode": "loud"}, "--noise"),
        ({"batch_size": 0}, "--batch"),
        ({"truncation_psi": float("nan")}, "--trunc"),
    ]
    for kwargs, says in cases:
        with pytest.raises(UserError, match=says):
            write_seed_images(model, [1], tmp_path / "out", **kwargs)
        assert not (tmp_path / "out").exists()  # refused before anything was written
    (tmp_path / "file").write_text("in the way")
    for outdir, says in ((tmp_path / "file", "is a file"), (tmp_path / "file" / "sub", "cannot")):
        with pytest.raises(UserError, match=says) as err:
            write_seed_images(model, [1], outdir)
        assert "\n" not in str(err.value)


def test_a_grayscale_model_writes_grayscale_pngs(tmp_path):
    from heroforge.nets.generator import build_generator

    torch.manual_seed(0)
    gen = build_generator(load_config("tiny-cpu", ["data.channels=1"]))
    (path,) = write_seed_images(wrap_generator(gen), [1], tmp_path)
    assert Image.open(path).mode == "L"
