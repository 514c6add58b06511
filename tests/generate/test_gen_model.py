"""--model: run folders, checkpoints and network files in; one-line refusals of anything else."""

import json

import pytest
import torch

from helpers.networks import make_generator
from heroforge.config import load_config
from heroforge.errors import UserError
from heroforge.generate.model import load_generator, parse_device
from heroforge.nets.discriminator import build_discriminator
from heroforge.nets.weights import save_networks


def one_line_error(model, match):
    with pytest.raises(UserError, match=match) as err:
        load_generator(model, "cpu")
    assert "\n" not in str(err.value)


@pytest.fixture
def run_dir(tmp_path):
    """A run folder with two checkpoints, each G_ema a different generator."""
    checkpoints = tmp_path / "run" / "checkpoints"
    checkpoints.mkdir(parents=True)
    for nimg, seed in ((1000, 1), (2000, 2)):
        gen, cfg = make_generator(seed)
        path = checkpoints / f"ckpt-{nimg:012d}.safetensors"
        save_networks(path, {"G": make_generator(9)[0], "G_ema": gen}, cfg)
    (checkpoints / "latest.json").write_text(json.dumps({"file": path.name}))
    return tmp_path / "run"


def test_a_network_file_gives_its_generator(model_path, model):
    assert model.source == model_path
    assert model.network == "G_ema"
    assert model.c_dim == 0
    assert not model.G.training
    assert not any(p.requires_grad for p in model.G.parameters())
    assert load_generator(model_path.with_suffix(".json")).source == model_path


def test_a_run_folder_gives_the_newest_checkpoint_and_prefers_g_ema(run_dir):
    loaded = load_generator(run_dir, "cpu")
    assert loaded.source.name == "ckpt-000000002000.safetensors"
    assert loaded.network == "G_ema"
    expected = make_generator(2)[0].state_dict()
    assert all(torch.equal(v, expected[k]) for k, v in loaded.G.state_dict().items())
    assert load_generator(run_dir / "checkpoints").source == loaded.source


def test_best_json_wins_and_a_bad_one_falls_back_to_the_latest(run_dir):
    best = run_dir / "checkpoints" / "best.json"
    best.write_text(json.dumps({"file": "ckpt-000000001000.safetensors"}))
    assert load_generator(run_dir).source.name == "ckpt-000000001000.safetensors"
    for text in ('{"file": "ckpt-000000000007.safetensors"}', "{", '{"file": "../x"}'):
        best.write_text(text)
        loaded = load_generator(run_dir)
        assert loaded.source.name == "ckpt-000000002000.safetensors"
        assert len(loaded.notes) == 1
        assert "best.json" in loaded.notes[0]


def test_a_damaged_newest_checkpoint_is_skipped_with_a_note(run_dir):
    newest = run_dir / "checkpoints" / "ckpt-000000002000.safetensors"
    newest.write_bytes(newest.read_bytes()[:-10])
    loaded = load_generator(run_dir)
    assert loaded.source.name == "ckpt-000000001000.safetensors"
    assert "damaged" in loaded.notes[0]


def test_missing_corrupt_and_other_files_are_refused(tmp_path, model_path):
    one_line_error(tmp_path / "nope", "no model at")
    (tmp_path / "notes.txt").write_text("hello")
    one_line_error(tmp_path / "notes.txt", "is not a model")
    (tmp_path / "text.safetensors").write_text("hello")
    one_line_error(tmp_path / "text.safetensors", "is missing")
    (tmp_path / "net.pkl").write_bytes(b"\x80\x04")
    one_line_error(tmp_path / "net.pkl", "not a readable network pickle")
    corrupt = tmp_path / "corrupt.safetensors"
    blob = bytearray(model_path.read_bytes())
    blob[-100] ^= 0xFF
    corrupt.write_bytes(bytes(blob))
    corrupt.with_suffix(".json").write_text(model_path.with_suffix(".json").read_text())
    one_line_error(corrupt, "corrupted or half-written")
    corrupt.with_suffix(".json").write_text('{"format": "heroforge-networks/1", "c_dim": 0}')
    one_line_error(corrupt, "networks")


def test_a_discriminator_only_file_is_refused(tmp_path):
    cfg = load_config("tiny-cpu")
    save_networks(tmp_path / "d.safetensors", {"D": build_discriminator(cfg)}, cfg)
    one_line_error(tmp_path / "d.safetensors", "holds no generator")


def test_folders_without_a_single_model_are_refused(tmp_path, model_path):
    one_line_error(tmp_path, "holds no model")
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    one_line_error(tmp_path / "run", "no checkpoint yet")
    imported = tmp_path / "imported"
    imported.mkdir()
    for name in ("a", "b"):
        (imported / f"{name}.safetensors").write_bytes(model_path.read_bytes())
        (imported / f"{name}.json").write_text(model_path.with_suffix(".json").read_text())
    one_line_error(imported, "several network files")
    (imported / "b.json").unlink()
    assert load_generator(imported).source == imported / "a.safetensors"


def test_devices():
    assert parse_device("cpu") == torch.device("cpu")
    with pytest.raises(UserError, match="not a device"):
        parse_device("potato")
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match="no usable CUDA"):
            parse_device("cuda")
