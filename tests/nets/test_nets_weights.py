"""Saving and loading networks: bit-exact round trips, and clear refusals of bad files."""

import hashlib
import json

import pytest
import torch

from helpers.network_files import rewrite_network_file
from heroforge.config import load_config
from heroforge.errors import UserError
from heroforge.nets.discriminator import build_discriminator
from heroforge.nets.generator import build_generator
from heroforge.nets.weights import load_networks, save_networks
from heroforge.rundir import sidecar_path


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(0)
    cfg = load_config("tiny-cpu")
    gen, disc = build_generator(cfg, c_dim=2), build_discriminator(cfg, c_dim=2)
    gen.mapping(
        torch.randn(16, 64), torch.eye(2)[[0, 1] * 8], update_w_avg=True
    )  # a non-zero w_avg
    for p in gen.parameters():
        p.data.add_(torch.randn_like(p) * 1e-3)  # not just the initial values
    path = tmp_path / "snapshot.safetensors"
    nets = {"G": gen, "D": disc, "G_ema": build_generator(cfg, c_dim=2)}
    extra = {"opt_G.step": torch.tensor(7), "opt_G.exp_avg.0": torch.randn(3, 4)}
    save_networks(path, nets, cfg, c_dim=2, metadata={"kimg": 12.5}, extra_tensors=extra)
    return path, nets, cfg, extra


def test_round_trip_is_bit_exact(saved):
    path, nets, cfg, extra = saved
    loaded = load_networks(path)
    assert loaded.cfg == cfg
    assert loaded.c_dim == 2
    assert loaded.metadata == {"kimg": 12.5}
    assert loaded.extra.keys() == extra.keys()
    assert all(torch.equal(loaded.extra[k], extra[k]) for k in extra)
    assert sorted(loaded.networks) == ["D", "G", "G_ema"]
    for name, net in nets.items():
        original, restored = net.state_dict(), loaded.networks[name].state_dict()
        assert original.keys() == restored.keys()
        assert all(torch.equal(original[k], restored[k]) for k in original)
    z, c = torch.randn(2, 64), torch.eye(2)
    with torch.no_grad():
        same = loaded.networks["G"](z, c, noise_mode="const")
        assert torch.equal(same, nets["G"](z, c, noise_mode="const"))


def test_the_json_holds_config_metadata_and_the_tensor_hash(saved):
    path, _, cfg, _ = saved
    sidecar = json.loads(sidecar_path(path).read_text())
    assert sidecar["config"] == cfg.to_dict()
    assert sidecar["networks"] == {"G": "generator", "D": "discriminator", "G_ema": "generator"}
    assert sidecar["safetensors_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert not list(path.parent.glob(".*.tmp"))  # atomic writes leave no temp files


def test_a_corrupted_tensor_file_is_refused(saved):
    path, _, _, _ = saved
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(UserError, match="corrupted or half-written"):
        load_networks(path)


def test_garbage_with_a_matching_hash_is_still_refused(saved):
    path, _, _, _ = saved
    rewrite_network_file(path, blob=b"\x10\x00\x00\x00\x00\x00\x00\x00{not a header}")
    with pytest.raises(UserError, match="not a valid safetensors file"):
        load_networks(path)


def test_tensors_that_do_not_fit_the_config_are_refused(saved):
    path, _, _, _ = saved

    def narrower(sidecar):
        sidecar["config"]["network"]["channel_max"] = 32

    rewrite_network_file(path, narrower)
    with pytest.raises(UserError, match=r"is \(64, .*but the config builds \(32, "):
        load_networks(path)


def test_missing_networks_and_extra_tensors_are_refused(saved):
    path, _, _, _ = saved

    def renamed(sidecar):
        sidecar["networks"] = {"G2": "generator", "D": "discriminator", "G_ema": "generator"}

    rewrite_network_file(path, renamed)
    with pytest.raises(UserError, match="has no tensor G2"):
        load_networks(path)

    def dropped(sidecar):
        sidecar["networks"] = {"D": "discriminator", "G_ema": "generator"}

    rewrite_network_file(path, dropped)
    with pytest.raises(UserError, match=r"tensors no network uses: G\.mapping"):
        load_networks(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "is missing"),
        ("{not json", "cannot read"),
        ('{"format": "pickle"}', "not a heroforge network file"),
    ],
)
def test_a_missing_or_bad_json_is_refused(saved, content, message):
    path, _, _, _ = saved
    if content is None:
        sidecar_path(path).unlink()
    else:
        sidecar_path(path).write_text(content)
    with pytest.raises(UserError, match=message):
        load_networks(path)


def test_save_refuses_other_modules_and_names(tmp_path):
    cfg = load_config("tiny-cpu")
    with pytest.raises(TypeError, match="Generator and Discriminator"):
        save_networks(tmp_path / "x.safetensors", {"M": torch.nn.Linear(2, 2)}, cfg)
    with pytest.raises(UserError, match=r"end in \.safetensors"):
        save_networks(tmp_path / "x.pt", {"G": build_generator(cfg)}, cfg)
    with pytest.raises(ValueError, match="names the extra tensors"):
        save_networks(tmp_path / "x.safetensors", {"extra": build_generator(cfg)}, cfg)
    with pytest.raises(TypeError):
        save_networks(
            tmp_path / "x.safetensors", {"G": build_generator(cfg)}, cfg, metadata={"f": print}
        )
    assert not list(tmp_path.iterdir())  # nothing half-written
