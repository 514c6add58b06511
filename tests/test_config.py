import dataclasses

import pytest

from heroforge.config import (
    Config,
    config_from_toml,
    load_config,
    parse_override,
    preset_names,
)
from heroforge.errors import ConfigError


def test_presets_exist():
    assert {"superheroes-512", "tiny-cpu"} <= set(preset_names())


@pytest.mark.parametrize("name", preset_names())
def test_round_trip_through_toml(name):
    cfg = load_config(name)
    assert config_from_toml(cfg.to_toml()) == cfg


def test_reference_preset_matches_mission_numbers():
    cfg = load_config("superheroes-512")
    assert cfg.replace({"job": {"name": ""}}) == Config()  # the defaults are the reference run
    assert cfg.data.resolution == 512
    assert cfg.data.channels == 3
    assert cfg.network.mapping_layers == 2
    assert cfg.network.mbstd_group == 4
    assert (cfg.network.channel_base, cfg.network.channel_max) == (32768, 512)
    assert cfg.train.r1_gamma == pytest.approx(0.0002 * 512**2 / 64)
    assert cfg.train.ema_kimg == pytest.approx(64 * 10 / 32)
    assert cfg.train.ema_rampup == 0.05
    assert (cfg.train.batch, cfg.train.g_lr, cfg.train.d_lr) == (64, 0.0025, 0.0025)
    assert (cfg.augment.target, cfg.augment.pipe) == (0.6, "bgc")
    assert (cfg.train.cycles, cfg.train.cycle_kimg, cfg.train.total_kimg) == (5, 5000, 25000)
    assert cfg.train.images_per_step == 8  # 64 over 8 GPUs


def test_tiny_preset_is_small():
    cfg = load_config("tiny-cpu")
    assert cfg.data.resolution <= 64
    assert cfg.network.channel_max <= 64
    assert cfg.train.gpus == 1
    assert cfg.train.deterministic
    assert cfg.train.betas == (0.0, 0.99)  # unlisted keys keep the reference values


def test_overrides_apply_in_order_and_parse_types():
    cfg = load_config("tiny-cpu", ["train.batch=16", "augment.pipe=bg", "train.batch=32"])
    assert cfg.train.batch == 32
    assert cfg.augment.pipe == "bg"
    assert load_config("tiny-cpu", ["train.g_lr=1"]).train.g_lr == 1.0  # int accepted as float
    assert isinstance(load_config("tiny-cpu", ["train.g_lr=1"]).train.g_lr, float)
    assert load_config("tiny-cpu", ["train.betas=[0.5, 0.9]"]).train.betas == (0.5, 0.9)
    assert parse_override("job.name=my run") == {"job": {"name": "my run"}}


def test_config_is_frozen_and_replace_validates():
    cfg = load_config("tiny-cpu")
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.train.batch = 3  # type: ignore[misc]
    assert cfg.replace({"train": {"batch": 16}}).train.batch == 16
    with pytest.raises(ConfigError, match=r"train\.batch"):
        cfg.replace({"train": {"batch": 0}})


def test_user_file_over_defaults(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('[data]\nresolution = 256\n[job]\nname = "mine"\n')
    cfg = load_config(str(path))
    assert cfg.data.resolution == 256
    assert cfg.job.name == "mine"
    assert cfg.train.batch == 64


REJECTIONS = [
    # (override, what the one-line message must say)
    ("train.bach=3", "unknown key train.bach (did you mean batch?)"),
    ("trian.batch=3", "unknown section [trian] (did you mean train?)"),
    ("data.resolution=500", "data.resolution = 500 is not allowed: a power of two"),
    ("data.resolution=4", "data.resolution = 4 is not allowed: a power of two from 8 to 2048"),
    ("train.batch=abc", 'train.batch = "abc" has the wrong type: expected an integer'),
    ("train.batch=true", "train.batch = true has the wrong type: expected an integer"),
    ("train.batch=2.5", "train.batch = 2.5 has the wrong type: expected an integer"),
    ("train.g_lr=-1", "train.g_lr = -1.0 is not allowed: > 0"),
    ("train.g_lr=nan", "train.g_lr = nan is not allowed: a finite number"),
    ("train.gpus=3", "train.batch = 4 is not allowed: a multiple of train.gpus = 3"),
    ("job.priority=2000000000", "job.priority = 2000000000 is not allowed: within +-1,000,000,000"),
    ("train.batch_gpu=3", "train.batch_gpu = 3 is not allowed: a divisor of batch / gpus = 4"),
    ("augment.target=1", "augment.target = 1.0 is not allowed: a number strictly between 0 and 1"),
    ("augment.target=0", "augment.target = 0.0 is not allowed: a number strictly between 0 and 1"),
    ("augment.p=1.5", "augment.p = 1.5 is not allowed: a number from 0 to 1"),
    (
        "prepare.far_face_human=1.5",
        "prepare.far_face_human = 1.5 is not allowed: a number from 0 to 1",
    ),
    ("prepare.min_figure=-0.1", "prepare.min_figure = -0.1 is not allowed: a number from 0 to 1"),
    ("prepare.head_human=2", "prepare.head_human = 2.0 is not allowed: a number from 0 to 1"),
    (
        "prepare.upper_tall_min_fill=1.2",
        "prepare.upper_tall_min_fill = 1.2 is not allowed: a number from 0 to 1",
    ),
    ("prepare.upper_tall_max_tall=0", "prepare.upper_tall_max_tall = 0.0 is not allowed: > 0"),
    ("augment.pipe=xyz", "augment.pipe = \"xyz\" is not allowed: one of 'bgc'"),
    ("train.betas=[0.1]", "train.betas = [0.1] has the wrong type: expected 2 numbers"),
    ("train.betas=[0.1, 1.0]", "train.betas = [0.1, 1.0] is not allowed: two numbers in [0, 1)"),
    ("network.mbstd_group=3", "network.mbstd_group = 3 is not allowed: a divisor of the images"),
    ("train.cycles=0", "train.cycles = 0 is not allowed: > 0"),
    ("data=3", "use SECTION.KEY=VALUE"),
    ("train.batch", "use SECTION.KEY=VALUE"),
]


@pytest.mark.parametrize(("override", "message"), REJECTIONS)
def test_rejections_are_one_line_with_exit_2(cli, override, message):
    code, out, err = cli("config", "show", "tiny-cpu", "--set", override)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1
    assert "Traceback" not in err
    assert message in err


def test_bad_files_are_rejected(cli, tmp_path):
    broken = tmp_path / "broken.toml"
    broken.write_text("[train\nbatch = 3")
    code, _, err = cli("config", "show", str(broken))
    assert code == 2
    assert "is not valid TOML" in err
    code, _, err = cli("config", "show", str(tmp_path / "missing.toml"))
    assert code == 2
    assert "cannot read config file" in err
    code, _, err = cli("config", "show", "superheroes-521")
    assert code == 2
    assert "did you mean superheroes-512?" in err
    scalar = tmp_path / "scalar.toml"
    scalar.write_text("train = 3\n")
    code, _, err = cli("config", "show", str(scalar))
    assert code == 2
    assert "[train] must be a table of keys" in err


def test_config_show_prints_resolved_toml(cli):
    code, out, err = cli("config", "show", "tiny-cpu", "--set", "train.batch=16")
    assert code == 0, err
    cfg = config_from_toml(out)
    assert cfg.train.batch == 16
    assert cfg.data.resolution == 32
    assert cfg == load_config("tiny-cpu", ["train.batch=16"])
