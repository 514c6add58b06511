"""`heroforge export`: ONNX (run by onnxruntime) and TorchScript give heroforge's pictures, the
mapping and synthesis apart compose to the whole, and the official state dict round-trips
through import-official's mapping."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
import torch

from helpers.networks import make_generator
from helpers.official import Builder, install_official_code, write
from heroforge.generate.latents import seed_z
from heroforge.generate.model import load_generator
from heroforge.generate.sample import generate_images, to_uint8
from heroforge.nets.official import import_official, matched_tensors
from heroforge.nets.official_config import (
    Arguments,
    discriminator_settings,
    generator_settings,
)
from heroforge.nets.weights import BUILDERS, load_networks, save_networks

SEEDS = list(range(8))
PSI = 0.7
CLASS = 2


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    """A conditional tiny generator (labels go in as c)."""
    gen, cfg = make_generator(seed=3, c_dim=4)
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    save_networks(path, {"G_ema": gen}, cfg, c_dim=4)
    return path


def heroforge_pictures(model_path) -> np.ndarray:
    model = load_generator(model_path, "cpu")
    return np.stack([np.asarray(im) for im in generate_images(model, SEEDS, PSI, class_idx=CLASS)])


def inputs(z_dim: int, c_dim: int) -> tuple[np.ndarray, np.ndarray]:
    z = seed_z(SEEDS, z_dim).astype(np.float32)
    c = np.zeros((len(SEEDS), c_dim), np.float32)
    c[:, CLASS] = 1
    return z, c


def assert_within_one_grey_level(images: np.ndarray, expected: np.ndarray) -> None:
    assert images.shape == expected.shape
    assert np.abs(images.astype(int) - expected.astype(int)).max() <= 1


def test_onnx_in_onnxruntime_draws_heroforges_pictures(cli, model_path, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    out = tmp_path / "hero.onnx"
    code, _, err = cli("export", "--model", str(model_path), "--format", "onnx", "--out", str(out))
    assert code == 0, err
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["z", "c", "psi"]
    z, c = inputs(64, 4)
    (img,) = session.run(None, {"z": z, "c": c, "psi": np.array(PSI, np.float32)})
    assert_within_one_grey_level(to_uint8(torch.from_numpy(img)), heroforge_pictures(model_path))


def test_onnx_mapping_and_synthesis_apart_compose(cli, model_path, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    sessions = {}
    for part in ("mapping", "synthesis"):
        out = tmp_path / f"{part}.onnx"
        code, _, err = cli("export", "--model", str(model_path), "--format", "onnx",
                           "--part", part, "--out", str(out))  # fmt: skip
        assert code == 0, err
        sessions[part] = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    z, c = inputs(64, 4)
    (ws,) = sessions["mapping"].run(None, {"z": z, "c": c, "psi": np.array(PSI, np.float32)})
    assert ws.shape[0] == len(SEEDS)
    (img,) = sessions["synthesis"].run(None, {"ws": ws})
    assert_within_one_grey_level(to_uint8(torch.from_numpy(img)), heroforge_pictures(model_path))


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")
def test_torchscript_draws_heroforges_pictures_at_any_batch(cli, model_path, tmp_path):
    out = tmp_path / "hero.pt"
    code, _, err = cli("export", "--model", str(model_path), "--format", "torchscript",
                       "--out", str(out))  # fmt: skip
    assert code == 0, err
    scripted = torch.jit.load(str(out))
    z, c = (torch.from_numpy(a) for a in inputs(64, 4))
    with torch.no_grad():
        whole = scripted(z, c, torch.tensor(PSI))
        halves = torch.cat([scripted(z[:3], c[:3], torch.tensor(PSI)),
                            scripted(z[3:], c[3:], torch.tensor(PSI))])  # fmt: skip
    expected = heroforge_pictures(model_path)
    assert_within_one_grey_level(to_uint8(whole), expected)
    assert_within_one_grey_level(to_uint8(halves), expected)


def test_bad_choices_get_one_line(cli, model_path, tmp_path):
    for args, expected in (
        (["--format", "tflite"], "--format 'tflite' is not one of"),
        (["--format", "onnx", "--part", "head"], "--part 'head' is not one of"),
    ):
        code, _, err = cli("export", "--model", str(model_path), *args, "--out", str(tmp_path))
        assert code == 2
        assert err.count("\n") == 1
        assert expected in err


@pytest.fixture
def official(monkeypatch, tmp_path):
    return install_official_code(monkeypatch, tmp_path)


@pytest.mark.parametrize(("g_arch", "d_arch"), [("skip", "resnet"), ("resnet", "skip")])
def test_the_official_state_dict_round_trips(cli, official, tmp_path, g_arch, d_arch):
    snapshot = Builder(official, g_arch, d_arch).snapshot()
    imported = import_official(write(tmp_path / "net.pkl", snapshot), tmp_path / "imported").path
    out = tmp_path / "official.pt"
    code, _, err = cli("export", "--model", str(imported), "--format", "official-state-dict",
                       "--out", str(out))  # fmt: skip
    assert code == 0, err
    exported = torch.load(out, weights_only=True)
    record = json.loads((tmp_path / "official.pt.json").read_text())
    # every name and value the official networks hold, the filter buffers included
    for name in ("G", "D", "G_ema"):
        official_tensors = snapshot[name].tensors()
        assert exported[name].keys() == official_tensors.keys(), name
        for key, value in official_tensors.items():
            assert torch.equal(exported[name][key], value), f"{name}.{key}"
    # and back: import-official's reading of the arguments and names rebuilds the same networks
    loaded = load_networks(imported)
    g = generator_settings(Arguments("G", record["init_kwargs"]["G"]))
    d = discriminator_settings(Arguments("D", record["init_kwargs"]["D"]))
    assert g["c_dim"] == loaded.c_dim
    assert g["data"] == {"resolution": 32, "channels": 3}
    for key, value in g["network"].items():
        assert getattr(loaded.cfg.network, key) == value, key
    assert (d["d_architecture"], d["mbstd_group"]) == (d_arch, loaded.cfg.network.mbstd_group)
    for name, kind in (("G", "generator"), ("D", "discriminator"), ("G_ema", "generator")):
        with torch.device("meta"):
            expected = BUILDERS[kind](loaded.cfg, c_dim=loaded.c_dim).state_dict()
        state = matched_tensors(name, kind, exported[name], expected)
        ours = loaded.networks[name].state_dict()
        assert state.keys() == ours.keys()
        assert all(torch.equal(state[k], ours[k]) for k in ours)
    assert not official.marker.exists()


def test_onnx_without_the_onnx_package_names_the_extra(cli, model_path, tmp_path, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "onnx" else real(name, *a)
    )
    out = tmp_path / "hero.onnx"
    code, _, err = cli("export", "--model", str(model_path), "--format", "onnx", "--out", str(out))
    assert code == 2
    assert "pip install 'heroforge[export]'" in err
    assert not out.exists()
