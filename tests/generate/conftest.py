"""A tiny random generator (the tiny-cpu preset: 32 px, 8 ws), saved once per session."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from heroforge.config import load_config
from heroforge.generate.model import LoadedGenerator, load_generator
from heroforge.nets.generator import build_generator
from heroforge.nets.weights import save_networks


def make_generator(seed: int = 0, c_dim: int = 0):
    """A tiny-cpu generator with a non-zero average w, so that truncation does something."""
    torch.manual_seed(seed)
    cfg = load_config("tiny-cpu")
    gen = build_generator(cfg, c_dim=c_dim)
    labels = torch.eye(c_dim)[torch.arange(256) % c_dim] if c_dim else None
    with torch.no_grad():
        ws = gen.mapping(torch.randn(256, gen.z_dim), labels)
        gen.mapping.w_avg.copy_(ws[:, 0].mean(dim=0))  # as training would have left it
        for name, param in gen.named_parameters():
            if name.endswith("noise_strength"):
                param.fill_(0.1)  # starts at 0; trained models use their noise
    return gen, cfg


@pytest.fixture(scope="session")
def model_path(tmp_path_factory) -> Path:
    gen, cfg = make_generator()
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    save_networks(path, {"G_ema": gen}, cfg)
    return path


@pytest.fixture(scope="session")
def model(model_path) -> LoadedGenerator:
    return load_generator(model_path, "cpu")


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors gain nothing from a second thread, and on a busy machine each parallel op
    waits for its slowest thread; pytest -n 2 already keeps both cores busy."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
