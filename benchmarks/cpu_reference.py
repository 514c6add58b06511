"""Shared by the speed benchmarks: this CPU's convolution peak and the official "auto" config.

The benchmarks run as scripts (`python benchmarks/x.py`), so this folder is on sys.path and
they import this module by name.
"""

import dataclasses
import os
import time

import torch
from torch.nn import functional

from heroforge.config import Config, load_config


def conv_peak(seconds: float = 3.0) -> float:
    """Best GFLOP/s of a 512 -> 512 3x3 conv on [8, 512, 32, 32], in either memory format:
    what this CPU can do at best, the yardstick for the networks' fraction of peak."""
    best = 0.0
    flops = 2 * 8 * 32 * 32 * 512 * 512 * 9
    for memory_format in (torch.contiguous_format, torch.channels_last):
        x = torch.randn(8, 512, 32, 32).to(memory_format=memory_format)
        w = torch.randn(512, 512, 3, 3).to(memory_format=memory_format)
        with torch.no_grad():
            functional.conv2d(x, w, padding=1)
            end = time.perf_counter() + seconds / 2
            while time.perf_counter() < end:
                start = time.perf_counter()
                functional.conv2d(x, w, padding=1)
                best = max(best, flops / (time.perf_counter() - start))
    return best / 1e9


def environment(return_memory: bool) -> dict:
    """Fields every speed line carries; applies heroforge's CPU allocator setting unless
    return_memory asks for glibc's default (for comparison)."""
    from heroforge.nets.cpu import keep_freed_memory

    return {
        "cpus": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "keep_freed_memory": False if return_memory else keep_freed_memory(),
    }


def auto_config(resolution: int, batch: int = 8) -> Config:
    """The official "auto" config for one GPU at this resolution (fp32 on the CPU)."""
    return load_config(
        "superheroes-512",
        [
            f"data.resolution={resolution}",
            f"network.channel_base={32768 if resolution >= 512 else 16384}",
            "train.gpus=1",
            f"train.batch={batch}",
            f"train.r1_gamma={0.0002 * resolution**2 / batch}",
            f"train.ema_kimg={batch * 10 / 32}",
            "train.precision=fp32",
        ],
    )


# The official "auto" rules at 32 px and batch 8 on the tiny-cpu network: every phase (R1, path
# length, style mixing, ADA). tiny-cpu itself trains with settings tuned for short runs; the
# speed benchmarks keep these so that their figures stay comparable from session to session.
TINY_OFFICIAL_RULES = ["train.batch=8", "train.g_lr=0.0025", "train.d_lr=0.0025"]
TINY_OFFICIAL_RULES += ["train.r1_gamma=0.0256", "train.pl_weight=2", "train.style_mixing=0.9"]
TINY_OFFICIAL_RULES += ["augment.mode=ada"]


def speed_config(name: str) -> Config:
    """A speed benchmark's configuration by name: "tiny" (the tiny-cpu network with the
    official rules), "auto64" (the official "auto" config at 64 px, batch 8) or "auto64-chunk4"
    (the same minibatch accumulated over two chunks of 4)."""
    if name == "tiny":
        return load_config("tiny-cpu", TINY_OFFICIAL_RULES)
    cfg = auto_config(64)
    if name == "auto64-chunk4":
        cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, batch_gpu=4))
    return cfg
