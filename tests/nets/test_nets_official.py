"""Importing official StyleGAN2-ADA pickles: faithful structure in, nothing from the file run.

The pickles are written the way stylegan2-ada-pytorch writes its network snapshots
(helpers/official.py); a marker file that stays absent proves that the importer never reached
the official reconstruction, which would run the source text the pickle carries.
"""

from __future__ import annotations

import io
import math
import os
import pickle
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
import torch.nn.functional as nnf

from helpers.official import (
    BASE,
    C_DIM,
    CMAX,
    MAPPING_LAYERS,
    RES,
    Builder,
    OfficialCode,
    W,
    Z,
    channels,
    install_official_code,
    split_form,
    write,
)
from heroforge.commands.nets import import_official_command
from heroforge.errors import UserError
from heroforge.nets.official import import_official
from heroforge.nets.official_pickle import read_official_pickle
from heroforge.nets.weights import load_networks


@pytest.fixture
def official(monkeypatch, tmp_path) -> OfficialCode:
    return install_official_code(monkeypatch, tmp_path)


@pytest.fixture
def snapshot(official):
    return Builder(official).snapshot()


# --- a faithful pickle imports, every tensor in its place ---


def test_every_official_tensor_lands_under_its_name_and_the_networks_run(
    official, snapshot, tmp_path
):
    pkl = write(tmp_path / "network-snapshot.pkl", snapshot)
    summary = import_official(pkl, tmp_path / "model")
    assert not official.marker.exists()  # the embedded source was never run
    loaded = load_networks(summary.path)
    net = loaded.cfg.network
    assert (loaded.cfg.data.resolution, loaded.cfg.data.channels, loaded.c_dim) == (RES, 3, C_DIM)
    assert (net.z_dim, net.w_dim, net.mapping_layers, net.mapping_lr_mult) == (Z, W, 2, 0.01)
    assert (net.channel_base, net.channel_max, net.num_fp16_res, net.conv_clamp) == (
        BASE,
        CMAX,
        4,
        256,
    )
    assert (net.g_architecture, net.d_architecture, net.mbstd_group, net.mbstd_channels) == (
        "skip",
        "resnet",
        4,
        1,
    )
    assert loaded.cfg.data.mirror
    assert loaded.cfg.data.use_labels
    assert loaded.metadata["source"] == "official pickle"
    assert loaded.metadata["augment_p"] == 0.25
    for name in ("G", "D", "G_ema"):
        official_tensors = {
            k: v for k, v in snapshot[name].tensors().items() if not k.endswith("resample_filter")
        }
        ours = loaded.networks[name].state_dict()
        assert set(ours) == set(official_tensors)
        for key, value in official_tensors.items():
            assert torch.equal(ours[key], value), key
    z, c = torch.randn(4, Z), torch.eye(C_DIM)[[0, 1, 2, 0]]
    with torch.no_grad():
        img = split_form(loaded.networks["G_ema"])(z, c, noise_mode="const")
        logits = loaded.networks["D"](img, c)
    assert img.shape == (4, 3, RES, RES)
    assert torch.isfinite(img).all()
    assert logits.shape == (4, 1)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize(("g_arch", "d_arch"), [("orig", "skip"), ("resnet", "orig")])
def test_other_architectures_import_too(official, tmp_path, g_arch, d_arch):
    pkl = write(tmp_path / "net.pkl", Builder(official, g_arch, d_arch).snapshot())
    cfg = import_official(pkl, tmp_path / "model").config
    assert (cfg.network.g_architecture, cfg.network.d_architecture) == (g_arch, d_arch)


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_every_pickle_protocol_reads_the_same(official, snapshot, tmp_path, protocol):
    contents = read_official_pickle(write(tmp_path / "net.pkl", snapshot, protocol))
    found = contents.networks["G"].named_tensors()
    expected = snapshot["G"].tensors()
    assert found.keys() == expected.keys()
    assert all(torch.equal(found[k], expected[k]) for k in expected)
    assert contents.networks["G"].init_kwargs["synthesis_kwargs"]["channel_base"] == BASE


def lrelu(x):
    return nnf.leaky_relu(x, 0.2) * math.sqrt(2)


def reference_mapping(t, z, c):
    """The official mapping formulas: equalised lr (gain lr/sqrt(fan_in), bias x lr)."""

    def fc(x, name, lr):
        w, b = t[f"{name}.weight"], t[f"{name}.bias"]
        return x @ (w * lr / math.sqrt(w.shape[1])).t() + b * lr

    def normalise(x):
        return x * (x.square().mean(dim=1, keepdim=True) + 1e-8).rsqrt()

    x = torch.cat([normalise(z), normalise(fc(c, "mapping.embed", 1.0))], dim=1)
    for i in range(MAPPING_LAYERS):
        x = lrelu(fc(x, f"mapping.fc{i}", 0.01))
    return x


def reference_b4(t, w0, w1):
    """The official 4x4 block: const -> modulated, demodulated 3x3 conv + const noise + bias,
    lrelu -> toRGB (modulated 1x1 conv, styles / sqrt(fan_in), no demodulation) + bias."""

    def affine(w, name):
        return w @ (t[f"{name}.weight"] / math.sqrt(W)).t() + t[f"{name}.bias"]

    p = "synthesis.b4."
    n = w0.shape[0]
    weight = t[p + "conv1.weight"][None] * affine(w0, p + "conv1.affine")[:, None, :, None, None]
    weight = weight * (weight.square().sum(dim=[2, 3, 4], keepdim=True) + 1e-8).rsqrt()
    x = t[p + "const"][None].repeat(n, 1, 1, 1)
    x = torch.cat([nnf.conv2d(x[i : i + 1], weight[i], padding=1) for i in range(n)])
    x = x + t[p + "conv1.noise_const"] * t[p + "conv1.noise_strength"]
    x = lrelu(x + t[p + "conv1.bias"].reshape(1, -1, 1, 1))
    styles = affine(w1, p + "torgb.affine") / math.sqrt(channels(4))
    weight = t[p + "torgb.weight"][None] * styles[:, None, :, None, None]
    img = torch.cat([nnf.conv2d(x[i : i + 1], weight[i]) for i in range(n)])
    return img + t[p + "torgb.bias"].reshape(1, -1, 1, 1)


def test_the_imported_generator_computes_the_official_formulas(official, snapshot, tmp_path):
    summary = import_official(write(tmp_path / "net.pkl", snapshot), tmp_path / "model")
    gen = split_form(load_networks(summary.path).networks["G"])
    t = snapshot["G"].tensors()
    z, c = torch.randn(3, Z), torch.eye(C_DIM)
    with torch.no_grad():
        ws = gen.mapping(z, c)
        torch.testing.assert_close(ws[:, 0], reference_mapping(t, z, c), rtol=1e-5, atol=1e-5)
        _, img = gen.synthesis.b4(None, None, ws[:, :2], noise_mode="const")
    torch.testing.assert_close(img, reference_b4(t, ws[:, 0], ws[:, 1]), rtol=1e-4, atol=1e-5)


def test_the_command_prints_one_line_and_never_overwrites(official, snapshot, tmp_path, capsys):
    pkl = write(tmp_path / "net.pkl", snapshot)
    import_official_command(pkl, tmp_path / "model")
    err = capsys.readouterr().err.strip()
    assert err.startswith("imported G, D and G_ema (32 px, RGB, 3 classes) to ")
    assert (tmp_path / "model" / "model.safetensors").exists()
    assert (tmp_path / "model" / "model.json").exists()
    with pytest.raises(UserError, match="already exists"):
        import_official_command(pkl, tmp_path / "model")


# --- hostile pickles: refused whole, payload never run ---


class Payload:
    """An object whose unpickling would call fn(*args) (the classic pickle attack)."""

    def __init__(self, fn, *args) -> None:
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


def refused(path: Path, *expected: str) -> str:
    with pytest.raises(UserError) as err:
        import_official(path, path.parent / "model")
    message = str(err.value)
    assert "\n" not in message
    for text in expected:
        assert text in message
    assert not (path.parent / "model").exists()
    return message


@pytest.mark.parametrize(
    ("payload", "global_name"),
    [
        (lambda marker: Payload(os.system, f"touch {marker}"), f"{os.system.__module__}.system"),
        (lambda marker: Payload(exec, f"open({str(marker)!r}, 'w').write('x')"), "builtins.exec"),
    ],
)
def test_a_pickle_that_calls_anything_else_is_refused_unrun(
    official, snapshot, tmp_path, payload, global_name
):
    # Hidden deep inside the generator's constructor arguments: the whole file is refused.
    snapshot["G"].at("synthesis.b8.conv0").kwargs["evil"] = payload(official.marker)
    message = refused(
        write(tmp_path / "evil.pkl", snapshot), global_name, "nothing from it was run"
    )
    assert message.startswith("refusing ")
    assert not official.marker.exists()


def test_a_storage_holding_a_malicious_torch_pickle_is_refused_unrun(official, snapshot, tmp_path):
    blob = io.BytesIO()
    torch.save(
        Payload(os.system, f"touch {official.marker}"), blob, _use_new_zipfile_serialization=False
    )
    evil_storage = Payload(torch.storage._load_from_bytes, blob.getvalue())
    evil_tensor = Payload(
        torch._utils._rebuild_tensor_v2, evil_storage, 0, (4,), (1,), False, OrderedDict()
    )
    snapshot["D"].at("b4.fc").buffers["extra"] = evil_tensor
    refused(write(tmp_path / "evil.pkl", snapshot), "a tensor storage is not plain data")
    assert not official.marker.exists()


def test_embedded_source_is_read_as_text_only(official, snapshot, tmp_path):
    assert "write_text" in official.source  # running it would create the marker
    import_official(write(tmp_path / "net.pkl", snapshot), tmp_path / "model")
    assert not official.marker.exists()


def storage_of(tensor: torch.Tensor) -> Payload:
    return Payload(torch.storage._load_from_bytes, pickle_storage_bytes(tensor))


def pickle_storage_bytes(tensor: torch.Tensor) -> bytes:
    blob = io.BytesIO()
    torch.save(tensor._typed_storage(), blob, _use_new_zipfile_serialization=False)
    return blob.getvalue()


def test_tensor_views_past_their_storage_and_state_on_tensors_are_refused(
    official, snapshot, tmp_path
):
    storage = storage_of(torch.zeros(4))
    past_the_end = Payload(
        torch._utils._rebuild_tensor_v2, storage, 2, (4,), (1,), False, OrderedDict()
    )
    snapshot["G"].at("mapping.fc0").buffers["bad"] = past_the_end
    refused(write(tmp_path / "a.pkl", snapshot), "reaches past its storage")
    repeated = Payload(torch._utils._rebuild_tensor_v2, storage, 0, (10**6,), (0,), False, {})
    snapshot["G"].at("mapping.fc0").buffers["bad"] = repeated  # a small file posing as big
    refused(write(tmp_path / "r.pkl", snapshot), "repeats its storage")

    class Restated(Payload):  # a tensor followed by BUILD, which would re-point it anywhere
        def __reduce__(self):
            return self.fn, self.args, (storage, 0, (1000,), (1,))

    inside = (storage, 0, (4,), (1,), False, OrderedDict())
    snapshot["G"].at("mapping.fc0").buffers["bad"] = Restated(
        torch._utils._rebuild_tensor_v2, *inside
    )
    refused(write(tmp_path / "b.pkl", snapshot), "set the state")


def test_damaged_files_and_other_pickles_get_one_line(official, snapshot, tmp_path):
    good = pickle.dumps(snapshot, protocol=3)
    (tmp_path / "half.pkl").write_bytes(good[: len(good) // 2])
    refused(tmp_path / "half.pkl", "is not a readable network pickle")
    (tmp_path / "noise.pkl").write_bytes(b"this is not a pickle")
    refused(tmp_path / "noise.pkl", "is not a readable network pickle")
    refused(write(tmp_path / "dict.pkl", {"weights": [1, 2]}), "has no G, D, G_ema")
    refused(write(tmp_path / "list.pkl", [1, 2]), "it holds a list")
    tf_networks = tuple(official.tf_network() for _ in range(3))
    refused(write(tmp_path / "tf.pkl", tf_networks), "TensorFlow")
    refused(tmp_path / "missing.pkl", "cannot read")
    assert not official.marker.exists()


def _set(path: str, value: object):
    def change(snapshot):
        *groups, key = path.split(".")
        target = snapshot["G"].kwargs
        for group in groups:
            target = target[group]
        target[key] = value

    return change


def _reshape(snapshot):
    layer = snapshot["G"].at("synthesis.b8.conv1")
    layer.params["weight"] = layer.params["weight"][:, :-1]


def _extra(snapshot):
    snapshot["D"].at("b16.conv0").params["gamma"] = torch.ones(2)


def _missing(snapshot):
    del snapshot["G_ema"].at("mapping").buffers["w_avg"]


def _other_filter(snapshot):
    snapshot["D"].at("b8").buffers["resample_filter"] = torch.ones(4, 4) / 16


def _shared_layer(snapshot):  # pickle memo: one layer object in two places
    blocks = snapshot["G"].at("synthesis").modules
    blocks["b16"].modules["conv1"] = blocks["b8"].modules["conv1"]


def _d_channels(snapshot):
    snapshot["D"].kwargs["channel_base"] = 512


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (_set("synthesis_kwargs.use_noise", False), "G.synthesis_kwargs.use_noise = False"),
        (_set("synthesis_kwargs.freshly_invented", 1), "G.synthesis_kwargs.freshly_invented"),
        (_set("mapping_kwargs.w_avg_beta", 0.9), "w_avg_beta = 0.9 is not supported"),
        (_reshape, "synthesis.b8.conv1.weight has shape [32, 31, 3, 3]"),
        (_extra, "no place for: b16.conv0.gamma"),
        (_missing, "G_ema lacks tensors its network needs: mapping.w_avg"),
        (_other_filter, "b8.resample_filter is not the [1,3,3,1] filter"),
        (_d_channels, "D has channel_base = 512 but G has 256"),
        (_shared_layer, "G: the layer at 'synthesis.b8.conv1.' also sits elsewhere"),
    ],
)
def test_networks_heroforge_cannot_reproduce_are_refused(
    official, snapshot, tmp_path, change, expected
):
    change(snapshot)
    refused(write(tmp_path / "net.pkl", snapshot), expected)


def test_stylegan3_networks_are_named_as_such(official, snapshot, tmp_path):
    snapshot["G"].at("synthesis").modules["input"] = Builder(official).layer("SynthesisInput")
    refused(write(tmp_path / "sg3.pkl", snapshot), "StyleGAN3")
