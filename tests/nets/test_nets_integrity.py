"""The sidecar is signed by its tensor file (issue 26.4) and its claims are checked against the
tensor file's header before a network is built (issue 26.5)."""

import json

import pytest

from helpers.network_files import rewrite_network_file
from helpers.networks import make_generator, tiny_net_config
from heroforge.errors import UserError
from heroforge.nets.discriminator import build_discriminator
from heroforge.nets.generator import build_generator
from heroforge.nets.integrity import ShapesOnly
from heroforge.nets.weights import load_networks, save_networks
from heroforge.rundir import sidecar_path

# What a training checkpoint's sidecar holds, in miniature: a counter, a rate, ADA's state.
METADATA = {"nimg": 1004, "opt_G": {"param_groups": [{"lr": 0.0025}]}, "ada": {"p": 0.125}}


@pytest.fixture
def network_file(tmp_path):
    gen, cfg = make_generator()
    path = tmp_path / "ckpt.safetensors"
    save_networks(path, {"G_ema": gen}, cfg, metadata=METADATA)
    return path


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ('"nimg": 1004', '"nimg": 1404'),
        ('"lr": 0.0025', '"lr": 0.0029'),
        ('"p": 0.125', '"p": 0.725'),
    ],
)
def test_a_one_digit_edit_of_the_sidecar_is_refused(network_file, before, after):
    sidecar = sidecar_path(network_file)
    text = sidecar.read_text()
    assert text.count(before) == 1
    sidecar.write_text(text.replace(before, after))
    with pytest.raises(
        UserError, match=r"ckpt\.json was changed after ckpt\.safetensors was written"
    ):
        load_networks(network_file)


def test_a_reformatted_sidecar_still_loads(network_file):
    sidecar = sidecar_path(network_file)
    sidecar.write_text(json.dumps(json.loads(sidecar.read_text()), indent=8))
    loaded = load_networks(network_file)
    assert loaded.metadata == METADATA
    assert loaded.sidecar_signed


def test_a_file_from_before_signed_sidecars_loads_and_says_so_once(network_file, cli, tmp_path):
    rewrite_network_file(network_file, signed=False)
    assert not load_networks(network_file).sidecar_signed
    code, out, err = cli("generate", "--model", str(network_file), "--seeds", "0-1",
                         "--outdir", str(tmp_path / "out"), "--device", "cpu")  # fmt: skip
    assert code == 0, out + err
    assert (out + err).count("written before sidecars were checksummed") == 1
    assert len(list((tmp_path / "out").glob("seed*.png"))) == 2


@pytest.mark.parametrize("c_dim", [0, 5])
def test_shapes_only_builds_the_real_networks_shapes_without_their_memory(c_dim):
    cfg = tiny_net_config(32)
    for build in (build_generator, build_discriminator):
        real = build(cfg, c_dim=c_dim).state_dict()
        with ShapesOnly():
            claimed = build(cfg, c_dim=c_dim).state_dict()
        assert list(claimed) == list(real)
        assert all(claimed[k].is_meta for k in claimed)
        assert [(v.shape, v.dtype) for v in claimed.values()] == [
            (v.shape, v.dtype) for v in real.values()
        ]
