"""Tiny, randomly initialised networks and their configs, for CPU tests."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from heroforge.config import Config, load_config
from heroforge.nets.generator import Generator, build_generator


def tiny_net_config(resolution: int = 32, *extra: str) -> Config:
    """The tiny-cpu preset at any resolution, with at most 16 feature maps a layer."""
    # 4 * resolution keeps at least 4 feature maps at the top block whatever the resolution.
    return load_config(
        "tiny-cpu",
        [
            f"data.resolution={resolution}",
            f"network.channel_base={4 * resolution}",
            "network.channel_max=16",
            *extra,
        ],
    )


def make_generator(
    seed: int = 0, c_dim: int = 0, overrides: Sequence[str] = ()
) -> tuple[Generator, Config]:
    """A tiny-cpu generator (with config overrides) with a non-zero average w, so that
    truncation does something."""
    torch.manual_seed(seed)
    cfg = load_config("tiny-cpu", list(overrides))
    gen = build_generator(cfg, c_dim=c_dim)
    labels = torch.eye(c_dim)[torch.arange(256) % c_dim] if c_dim else None
    with torch.no_grad():
        ws = gen.mapping(torch.randn(256, gen.z_dim), labels)
        gen.mapping.w_avg.copy_(ws[:, 0].mean(dim=0))  # as training would have left it
        for name, param in gen.named_parameters():
            if name.endswith("noise_strength"):
                param.fill_(0.1)  # starts at 0; trained models use their noise
    return gen, cfg
