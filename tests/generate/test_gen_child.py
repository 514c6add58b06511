"""Children of two heroes: the panel, blending, per-layer mixing and saved latents."""

import numpy as np
import pytest
import torch
from PIL import Image

from heroforge.errors import UserError
from heroforge.generate.child import coarse_layer_count, make_child, write_child
from heroforge.generate.latents import load_latent, resolve_keys, save_latent
from heroforge.generate.sample import generate_images


@pytest.fixture(scope="module")
def parents(model):
    return resolve_keys(model, [12, 40])


def test_panel_is_parent_child_parent(model, parents):
    child = make_child(model, *parents)
    assert child.panel.shape == (32, 3 * 32, 3)
    a, b = (np.asarray(img) for img in generate_images(model, [12, 40]))
    assert np.abs(child.panel[:, :32].astype(int) - a).max() <= 1
    assert np.array_equal(child.panel[:, 32:64], child.image)
    assert np.abs(child.panel[:, 64:].astype(int) - b).max() <= 1


def test_the_child_blends_its_parents(model, parents):
    a, b = parents
    child = make_child(model, a, b, weight=0.5)
    torch.testing.assert_close(child.ws, (a.ws + b.ws) / 2)
    left, right = child.panel[:, :32].astype(int), child.panel[:, 64:].astype(int)
    to_a, to_b = np.abs(child.image - left).mean(), np.abs(child.image - right).mean()
    assert to_a > 2
    assert to_b > 2  # a new hero, not a copy of either parent
    assert to_a < np.abs(left - right).mean()
    assert to_b < np.abs(left - right).mean()
    only_a = make_child(model, a, b, weight=0.0)
    assert np.array_equal(only_a.image, only_a.panel[:, :32])
    only_b = make_child(model, a, b, weight=1.0)
    assert np.array_equal(only_b.image, only_b.panel[:, 64:])


def test_layer_modes_take_whole_layers(model, parents):
    a, b = parents
    coarse = coarse_layer_count(model.G, 16)
    assert coarse == 5  # b4 conv1, b8 conv0/conv1, b16 conv0/conv1
    child = make_child(model, a, b, mode="coarse-from-a", coarse_res=16)
    assert torch.equal(child.ws[:coarse], a.ws[:coarse])
    assert torch.equal(child.ws[coarse:], b.ws[coarse:])
    child = make_child(model, a, b, mode="fine-from-a", coarse_res=8)
    assert torch.equal(child.ws[:3], b.ws[:3])
    assert torch.equal(child.ws[3:], a.ws[3:])


def test_write_child_and_its_latent_as_a_parent(model, tmp_path):
    paths = write_child(model, [12, 40], tmp_path, weight=0.25)
    assert paths["child"].name == "child-seed12-seed40-blend25.png"
    assert Image.open(paths["panel"]).size == (96, 32)
    assert Image.open(paths["child"]).text["parents"] == "seed12,seed40"
    child_ws = load_latent(paths["latent"], model)
    grandchild = write_child(model, [paths["latent"], 7], tmp_path, mode="fine-from-a")
    assert grandchild["child"].name == "child-child-seed12-seed40-blend25-seed7-fine-from-a16.png"
    panel = np.asarray(Image.open(grandchild["panel"]))
    assert np.array_equal(panel[:, :32], np.asarray(Image.open(paths["child"])))
    assert child_ws.shape == (model.G.num_ws, model.G.w_dim)


@pytest.mark.parametrize(
    ("parents", "kwargs", "says"),
    [
        ([1, 2, 3], {}, "exactly two"),
        ([1], {}, "exactly two"),
        ([1, 2], {"weight": 1.5}, "--weight"),
        ([1, 2], {"weight": 0.3, "mode": "coarse-from-a"}, "is for --mode blend"),
        ([1, 2], {"mode": "twins"}, "--mode"),
        ([1, 2], {"mode": "coarse-from-a", "coarse_res": 32}, "--coarse-res"),
        ([1, 2], {"mode": "coarse-from-a", "coarse_res": 12}, "--coarse-res"),
        ([1, 2], {"coarse_res": 8}, "--coarse-res is for the coarse-from-a and fine-from-a"),
    ],
)
def test_bad_children_are_refused(model, tmp_path, parents, kwargs, says):
    with pytest.raises(UserError, match=says):
        write_child(model, parents, tmp_path / "out", **kwargs)
    assert not (tmp_path / "out").exists()


def test_bad_latent_files_are_one_line_errors(model, model_path, tmp_path):
    wrong = save_latent(tmp_path / "wrong.latent.safetensors", torch.zeros(3, 64))
    (tmp_path / "junk.latent.safetensors").write_bytes(b"\x00junk")
    cases = [
        (wrong, "another model"),
        (model_path, "not a latent file"),
        (tmp_path / "junk.latent.safetensors", "cannot read"),
        (tmp_path / "missing.latent.safetensors", "no latent file"),
    ]
    for path, says in cases:
        with pytest.raises(UserError, match=says) as err:
            write_child(model, [path, 1], tmp_path)
        assert "\n" not in str(err.value)
