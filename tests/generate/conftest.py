"""A tiny random generator (the tiny-cpu preset: 32 px, 8 ws), saved once per session."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from helpers.networks import make_generator
from heroforge.generate.model import LoadedGenerator, load_generator
from heroforge.nets.weights import save_networks


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
