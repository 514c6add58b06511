"""Parameter parity with the official StyleGAN2-ADA networks (trainable parameters only)."""

import pytest
import torch

from heroforge.config import load_config
from heroforge.nets.discriminator import build_discriminator
from heroforge.nets.generator import build_generator
from heroforge.nets.summary import count_params, summarize

AUTO_64_1GPU = [
    "data.resolution=64",
    "network.channel_base=16384",
    "train.gpus=1",
    "train.batch=32",
    "network.mbstd_group=4",
]


def meta_counts(preset, overrides=()):
    cfg = load_config(preset, list(overrides))
    with torch.device("meta"):
        return count_params(build_generator(cfg)), count_params(build_discriminator(cfg))


@pytest.mark.parametrize(
    ("preset", "overrides", "g", "d"),
    [
        ("superheroes-512", (), 28_700_647, 28_982_849),  # "auto", 512 px, 8 GPUs
        ("superheroes-512", AUTO_64_1GPU, 22_243_608, 23_407_361),  # "auto", 64 px, 1 GPU
        ("paper512", (), 30_276_583, 28_982_849),
        ("stylegan2", (), 30_370_060, 29_012_513),  # config F at 1024 px
    ],
)
def test_parameter_counts_match_the_official_configs(preset, overrides, g, d):
    assert meta_counts(preset, overrides) == (g, d)


def test_buffers_do_not_count_but_the_constant_input_does():
    cfg = load_config("tiny-cpu")
    gen = build_generator(cfg)
    buffers = dict(gen.named_buffers())
    assert "mapping.w_avg" in buffers
    assert "synthesis.b4.conv1.noise_const" in buffers
    assert "synthesis.b4.const" in dict(gen.named_parameters())
    assert count_params(gen) == sum(p.numel() for p in gen.parameters())


def test_mapping_learns_at_one_hundredth_through_its_weight_gain():
    gen = build_generator(load_config("superheroes-512"))
    fc = gen.mapping.fc0
    assert fc.bias_gain == pytest.approx(0.01)
    assert fc.weight_gain == pytest.approx(0.01 / 512**0.5)
    assert fc.weight.std().item() == pytest.approx(100, rel=0.02)  # stored as N(0, 1) / lr_mult


def test_summary_reports_totals_blocks_and_flops():
    s = summarize(load_config("superheroes-512"))
    assert (s["G"], s["D"], s["num_ws"]) == (28_700_647, 28_982_849, 16)
    assert [b["name"] for b in s["G_blocks"]] == ["mapping"] + [f"b{2**i}" for i in range(2, 10)]
    assert [b["name"] for b in s["D_blocks"]] == [f"b{2**i}" for i in range(9, 1, -1)]
    assert sum(b["params"] for b in s["G_blocks"]) == s["G"]
    assert sum(b["params"] for b in s["D_blocks"]) == s["D"]
    # The 3x3 convolutions alone at 512 px: 2 * 512^2 pixels * 64 * 64 * 9 multiply-adds * 2.
    assert s["G_flops"] > 2 * 512**2 * 64 * 64 * 9 * 2
    assert sum(b["flops"] for b in s["G_blocks"]) <= s["G_flops"]


@pytest.mark.parametrize(
    ("preset", "resolution", "mapping_layers", "channel_base", "mbstd_group", "batch"),
    [
        ("stylegan2", 1024, 8, 32768, 4, 32),
        ("paper256", 256, 8, 16384, 8, 64),
        ("paper512", 512, 8, 32768, 8, 64),
        ("paper1024", 1024, 8, 32768, 4, 32),
        ("cifar", 32, 2, 32768, 32, 64),
    ],
)
def test_official_presets_load_with_their_numbers(
    preset, resolution, mapping_layers, channel_base, mbstd_group, batch
):
    cfg = load_config(preset)
    net = cfg.network
    assert cfg.data.resolution == resolution
    assert cfg.train.batch == batch
    assert (net.mapping_layers, net.channel_base, net.mbstd_group) == (
        mapping_layers,
        channel_base,
        mbstd_group,
    )
    assert cfg.train.ema_rampup == (0.05 if preset == "cifar" else 0.0)
    assert cfg.train.total_kimg == (100_000 if preset == "cifar" else 25_000)


def test_cifar_preset_turns_off_path_length_style_mixing_and_the_resnet_d():
    cfg = load_config("cifar")
    assert (cfg.train.pl_weight, cfg.train.style_mixing) == (0.0, 0.0)
    assert cfg.network.d_architecture == "orig"
