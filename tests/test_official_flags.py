"""The official StyleGAN2-ADA script flag names on `heroforge generate`, `mix` and `train`."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from helpers.cli import user_error
from helpers.networks import make_generator
from heroforge.commands import app
from heroforge.commands import train as train_module
from heroforge.config import Config
from heroforge.nets.weights import save_networks


@pytest.fixture(scope="module")
def run():
    runner = CliRunner()
    return lambda *args: runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    gen, cfg = make_generator()
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    save_networks(path, {"G_ema": gen}, cfg)
    return path


def pixels(folder):
    return {p.name: np.asarray(Image.open(p)) for p in sorted(folder.glob("*.png"))}


def test_generate_takes_the_official_names(run, model_path, tmp_path):
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    result = run(
        "generate", "--model", model_path, "--seeds", "0-2", "--trunc", "0.7",
        "--noise", "none", "--outdir", ours,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    # the official generate.py command line, word for word
    result = run(
        "generate", "--network", model_path, "--seeds", "0-2", "--trunc", "0.7",
        "--noise-mode", "none", "--outdir", theirs,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    mine, official = pixels(ours), pixels(theirs)
    assert list(mine) == ["seed0000.png", "seed0001.png", "seed0002.png"]
    assert list(official) == list(mine)
    for name, picture in mine.items():
        assert np.array_equal(picture, official[name]), name


def test_generate_noise_mode_is_checked_like_noise(run, model_path, tmp_path):
    result = run(
        "generate", "--network", model_path, "--seeds", "1", "--noise-mode", "loud",
        "--outdir", tmp_path,
    )  # fmt: skip
    assert "--noise" in user_error(result)


def test_mix_takes_the_official_styles_name(run, model_path, tmp_path):
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    common = ["--rows", "1,2", "--cols", "3,4", "--trunc", "1"]
    result = run("mix", "--model", model_path, *common, "--layers", "0-3", "--outdir", ours)
    assert result.exit_code == 0, result.output
    result = run("mix", "--network", model_path, *common, "--styles", "0-3", "--outdir", theirs)
    assert result.exit_code == 0, result.output
    mine, official = pixels(ours), pixels(theirs)
    assert len(mine) == 1
    assert list(official) == list(mine)
    name = next(iter(mine))
    assert np.array_equal(mine[name], official[name])


@pytest.fixture
def started(monkeypatch):
    """What `train` would start: the resolved config, with the training itself left out."""
    seen: dict[str, Config] = {}

    def record(cfg, *_args):
        seen["cfg"] = cfg

    monkeypatch.setattr(train_module, "_train_here", record)
    return seen


def test_train_takes_the_official_names(run, started, tiny_archive, tmp_path):
    result = run(
        "train", "--outdir", tmp_path, "--cfg", "tiny-cpu", "--data", tiny_archive,
        "--gpus", "1", "--gamma", "6.5", "--mirror", "1", "--aug", "fixed", "--p", "0.2",
        "--target", "0.7", "--augpipe", "bg", "--snap", "3", "--kimg", "2", "--batch", "8",
        "--freezed", "1", "--fp32", "true", "--subset", "20", "--workers", "0", "--cond", "0",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    cfg = started["cfg"]
    assert cfg.train.r1_gamma == 6.5
    assert cfg.data.mirror is True
    assert cfg.data.use_labels is False
    assert cfg.data.max_images == 20
    assert cfg.data.workers == 0
    assert (cfg.augment.mode, cfg.augment.p, cfg.augment.target) == ("fixed", 0.2, 0.7)
    assert cfg.augment.pipe == "bg"
    assert cfg.train.batch == 8
    assert cfg.train.freeze_d == 1
    assert cfg.train.precision == "fp32"
    # --snap counts ticks: tiny-cpu ticks every 0.5 kimg, so 3 ticks = 1.5 kimg
    assert cfg.train.checkpoint_kimg == 1.5
    assert cfg.metrics.every_kimg == 1.5
    assert cfg.network.z_dim == 64  # --cfg chose the tiny-cpu preset


def test_train_cfg_auto_is_the_default_preset(run, started, tiny_archive, tmp_path):
    args = ["--cfg", "auto", "--data", tiny_archive, "--outdir", tmp_path, "--gpus", "1"]
    result = run("train", *args)
    assert result.exit_code == 0, result.output
    assert started["cfg"].data.resolution == 512


def test_train_aug_noaug_is_mode_none(run, started, tiny_archive, tmp_path):
    args = ["train", "--cfg", "tiny-cpu", "--data", tiny_archive, "--outdir", tmp_path]
    result = run(*args, "--aug", "noaug", "--mirror", "0")
    assert result.exit_code == 0, result.output
    assert started["cfg"].augment.mode == "none"
    assert started["cfg"].data.mirror is False


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--mirror", "perhaps"], "--mirror takes a yes/no value"),
        (["--aug", "sometimes"], "--aug 'sometimes'"),
        (["--snap", "0"], "--snap must be"),
        (["--gamma", "-1"], "train.r1_gamma"),
    ],
)
def test_train_refuses_bad_official_values(run, started, tiny_archive, tmp_path, args, says):
    result = run("train", "--cfg", "tiny-cpu", "--data", tiny_archive, "--outdir", tmp_path, *args)
    assert says in str(result.exception), result.output
    assert "cfg" not in started


def test_official_resume_pickle_points_to_init_from(run, started, tmp_path):
    pickle = tmp_path / "network-snapshot-000100.pkl"
    pickle.write_bytes(b"not read")
    says = user_error(run("train", "--resume", pickle))
    assert "--init-from" in says
    assert str(pickle) in says
    assert "cfg" not in started


def test_official_flags_cannot_change_a_resumed_run(run, started, tmp_path):
    (tmp_path / "run").mkdir()
    result = run("train", "--resume", tmp_path / "run", "--gamma", "3")
    assert "--resume takes the run's own config" in user_error(result)
