"""Shared by the speed benchmarks: this CPU's convolution peak and the official "auto" config.

The benchmarks run as scripts (`python benchmarks/x.py`), so this folder is on sys.path and
they import this module by name.
"""

import dataclasses
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch.nn import functional
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

from heroforge.config import Config, load_config

if TYPE_CHECKING:
    from heroforge.data.dataset import ImageDataset


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
    from heroforge.runtime.allocator import keep_freed_memory

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


def noise_dataset(folder: Path, resolution: int, count: int = 32) -> "ImageDataset":
    """`count` pictures of uniform noise written into `folder`, as a dataset: what a training
    step's speed needs (the pixels do not matter), the same for every benchmark."""
    from PIL import Image

    from heroforge.data.dataset import ImageDataset

    rng = np.random.default_rng(0)
    for i in range(count):
        pixels = rng.integers(0, 256, (resolution, resolution, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{i:03d}.png")
    return ImageDataset(folder, resolution=resolution)


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


class FlopCount(TorchDispatchMode):
    """torch's FLOP formulas (flop_counter.flop_registry: convolutions and their backward,
    matrix products) summed over every op run inside. Not FlopCounterMode itself: its module
    tracker's hooks make autograd.grad fail on a leaf, as in the R1 and path-length phases."""

    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        formula = flop_registry.get(func._overloadpacket)
        if formula is not None:
            self.total += formula(*args, **kwargs, out_val=out)
        return out


def training_flops(run_step, phases_at, window: range, cycle: int) -> tuple[float, float]:
    """FLOPs of the training steps in `window` and the mean per step over `cycle` steps (one
    period of the lazy regularisers). FLOPs depend only on which phases run, so one step of each
    distinct phase set is counted (FlopCount: multiply-add = 2, backward and double
    backward included). run_step(step) runs the trainer's step with its counter set to `step`;
    counting slows the ops down, so call this after timing."""
    counted: dict[tuple, float] = {}

    def flops(step: int) -> float:
        phases = phases_at(step)
        if phases not in counted:
            with FlopCount() as counter:
                run_step(step)
            counted[phases] = counter.total
        return counted[phases]

    window_total = sum(flops(step) for step in window)
    return window_total, sum(flops(step) for step in range(cycle)) / cycle


def peak_fields(window_flops: float, seconds: float, steps: int, per_step: float, batch: int):
    """What a timed window of `steps` training steps (`seconds` in all) reaches against this
    CPU's convolution peak: achieved GFLOP/s, its fraction of the peak, the s/kimg that the
    window's arithmetic would take at that peak (a bound for any implementation built on these
    convolutions), and the training GFLOPs per image over a whole regulariser period (for the
    fraction of peak on any device)."""
    peak = conv_peak()
    return {
        "train_gflop_per_image": round(per_step / batch / 1e9, 2),
        "achieved_gflops": round(window_flops / seconds / 1e9, 1),
        "conv_peak_gflops": round(peak, 1),
        "peak_fraction": round(window_flops / seconds / 1e9 / peak, 3),
        "sec_per_kimg_at_peak": round(window_flops / (peak * 1e9) / (steps * batch) * 1000, 1),
    }
