"""An official StyleGAN2-ADA pickle works wherever a model does (--model, --init-from, the web
explorer), read by the restricted reader with the same result as `import-official` first.

The pickles are built like the official ones (helpers/official.py); the marker file that their
embedded source would write stays absent, so nothing from them ran.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from helpers.official import BASE, CMAX, MAPPING_LAYERS, Builder, install_official_code, write
from helpers.training import network_tensors, only_run
from heroforge.config import load_config
from heroforge.errors import UserError
from heroforge.generate.model import load_generator
from heroforge.nets.official import import_official
from heroforge.nets.weights import load_networks
from heroforge.serve.models import ModelCache
from heroforge.train.transfer import load_init_model

# The run settings that build the networks of helpers/official.py's unconditional pickle.
MATCHING = [
    "network.z_dim=16",
    "network.w_dim=16",
    f"network.channel_base={BASE}",
    f"network.channel_max={CMAX}",
    f"network.mapping_layers={MAPPING_LAYERS}",
]


@pytest.fixture
def official(monkeypatch, tmp_path):
    return install_official_code(monkeypatch, tmp_path)


@pytest.fixture
def conditional_pkl(official, tmp_path):
    return write(tmp_path / "network-snapshot-000100.pkl", Builder(official).snapshot())


@pytest.fixture
def unconditional_pkl(official, tmp_path):
    return write(tmp_path / "uncond.pkl", Builder(official, c_dim=0).snapshot())


def pictures(folder):
    return {p.name: np.asarray(Image.open(p)) for p in sorted(folder.glob("seed*.png"))}


def test_generate_draws_from_a_pickle_what_it_draws_after_import(
    cli, official, conditional_pkl, tmp_path
):
    imported = import_official(conditional_pkl, tmp_path / "imported").path
    for model, out in ((conditional_pkl, "direct"), (imported, "imported")):
        outdir = str(tmp_path / out)
        code, _, err = cli("generate", "--model", str(model), "--seeds", "0-3", "--class", "1",
                           "--trunc", "0.7", "--device", "cpu", "--outdir", outdir)  # fmt: skip
        assert code == 0, err
    direct, after_import = pictures(tmp_path / "direct"), pictures(tmp_path / "imported")
    assert list(direct) == ["seed0000.png", "seed0001.png", "seed0002.png", "seed0003.png"]
    for name, image in direct.items():
        assert np.array_equal(image, after_import[name]), name
    assert not official.marker.exists()
    loaded = load_generator(conditional_pkl, "cpu")
    assert (loaded.source, loaded.network, loaded.c_dim) == (conditional_pkl, "G_ema", 3)


def test_a_pickle_that_is_no_official_network_gets_one_line(cli, tmp_path):
    bad = tmp_path / "other.pkl"
    bad.write_bytes(b"\x80\x04K\x01.")  # a pickled 1
    code, _, err = cli("generate", "--model", str(bad), "--seeds", "0", "--outdir", str(tmp_path))
    assert code == 2
    assert err.count("\n") == 1
    assert str(bad) in err


def test_init_from_takes_a_pickle_like_its_import(official, unconditional_pkl, tmp_path):
    cfg = load_config("tiny-cpu", MATCHING)
    direct = load_init_model(unconditional_pkl, cfg, c_dim=0)
    imported = import_official(unconditional_pkl, tmp_path / "imported").path
    via_import = load_init_model(imported, cfg, c_dim=0)
    nets = {"G": direct.G, "D": direct.D, "G_ema": direct.G_ema}
    expected = network_tensors({"G": via_import.G, "D": via_import.D, "G_ema": via_import.G_ema})
    found = network_tensors(nets)
    assert found.keys() == expected.keys()
    assert all(torch.equal(found[k], expected[k]) for k in expected)
    record = direct.record()
    assert record["sha256"] == record["pickle_sha256"] == via_import.metadata["pickle_sha256"]
    assert record["source"] == "official pickle"
    with pytest.raises(UserError, match=r"network\.z_dim is 16 there, 64 here"):
        load_init_model(unconditional_pkl, load_config("tiny-cpu"), c_dim=0)
    assert not official.marker.exists()


@pytest.mark.slow
def test_train_init_from_a_pickle_runs_and_records_it(
    cli, official, unconditional_pkl, tiny_archive, tmp_path
):
    settings = [word for key in MATCHING for word in ("--set", key)]
    code, _, err = cli("train", "--data", str(tiny_archive), "--preset", "tiny-cpu",
                       "--outdir", str(tmp_path / "runs"), "--kimg", "0.008",
                       "--init-from", str(unconditional_pkl), *settings)  # fmt: skip
    assert code == 0, err
    run = json.loads((only_run(tmp_path / "runs") / "run.json").read_text())
    assert run["init_from"]["path"] == str(unconditional_pkl.resolve())
    assert run["init_from"]["source"] == "official pickle"
    assert run["init_from"]["sha256"] == run["init_from"]["pickle_sha256"]
    assert not official.marker.exists()


def test_the_explorer_loads_a_pickle_like_its_import(official, conditional_pkl, tmp_path):
    imported = import_official(conditional_pkl, tmp_path / "imported").path
    model = ModelCache().get(conditional_pkl)
    expected = load_networks(imported).networks["G_ema"].state_dict()
    assert all(torch.equal(v, expected[k]) for k, v in model.G.state_dict().items())
