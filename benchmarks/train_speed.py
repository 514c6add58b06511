"""Training throughput on the CPU: s/kimg, img/s and peak RSS per configuration, JSON lines.

Runs the real training loop (all four phases, ADA, EMA) on random images for a few steps
after a warm-up, in a fresh process per configuration so that peak memory is its own.
Configurations (cpu_reference.speed_config): the tiny-cpu network with the official rules
(every phase, as before tiny-cpu was tuned for short runs), the official "auto" config at 64 px
(channel base 16384, batch 8, fp32), and that one with gradients accumulated over two chunks of
4 (batch_gpu 4: the same minibatch and minibatch-std groups of 4, half the activations at a
time). FLOPs per image are those of G and D forward passes (nets summary).

Usage: python benchmarks/train_speed.py [--steps 6] [--only tiny|auto64|auto64-chunk4]
"""

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONFIGS = ("tiny", "auto64", "auto64-chunk4")  # see the docstring


def measure(name: str, steps: int) -> dict:
    import numpy as np
    import torch
    from PIL import Image

    from cpu_reference import peak_fields, speed_config, training_flops
    from heroforge.data.dataset import ImageDataset
    from heroforge.nets.summary import summarize
    from heroforge.runtime.dist import DistInfo
    from heroforge.train.loop import Trainer, phases_at
    from heroforge.train.stats import TickStats

    cfg = speed_config(name)
    with tempfile.TemporaryDirectory() as tmp:
        rng = np.random.default_rng(0)
        res = cfg.data.resolution
        for i in range(32):
            pixels = rng.integers(0, 256, (res, res, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(Path(tmp) / f"{i:03d}.png")
        dataset = ImageDataset(tmp, resolution=res)
        trainer = Trainer(cfg, dataset, Path(tmp) / "run", DistInfo(0, 1, torch.device("cpu")))
        stats = TickStats()
        for _ in range(2):  # warm-up: first-touch allocations, kernel selection
            trainer.step(stats)
        start, cpu_start = time.perf_counter(), os.times()
        for _ in range(steps):
            trainer.step(stats)
        window_seconds = time.perf_counter() - start
        seconds = window_seconds / steps
        system_s = (os.times().system - cpu_start.system) / steps
        peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

        def run_step(step: int) -> None:
            trainer.progress.step = step
            trainer.step(stats)

        tc = cfg.train
        window_flops, per_step = training_flops(
            run_step,
            lambda step: phases_at(tc, step),
            range(2, 2 + steps),
            math.lcm(tc.pl_interval, tc.r1_interval),
        )
    summary = summarize(cfg)
    img_per_s = cfg.train.batch / seconds
    return {
        "benchmark": "train_speed",
        "config": name,
        "resolution": cfg.data.resolution,
        "batch": cfg.train.batch,
        "batch_gpu": cfg.train.images_per_step,
        "sec_per_kimg": round(1000 / img_per_s, 1),
        "img_per_s": round(img_per_s, 3),
        "system_s_per_step": round(system_s, 3),  # kernel time: page faults, mostly
        "forward_gflops_per_image": round((summary["G_flops"] + summary["D_flops"]) / 1e9, 2),
        "peak_rss_mb": round(peak_rss_mb, 1),
        **peak_fields(window_flops, window_seconds, steps, per_step, cfg.train.batch),
        "threads": torch.get_num_threads(),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "glibc_tunables": os.environ.get("GLIBC_TUNABLES", ""),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--only", choices=CONFIGS)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.steps)))
        return
    for name in [args.only] if args.only else CONFIGS:
        print(run_child(name, args.steps))


def run_child(name: str, steps: int) -> str:
    """One configuration in a fresh process, with the allocator settings `heroforge train`
    starts itself with (runtime/allocator.py), so that the figures are what users get."""
    from heroforge.runtime.allocator import training_allocator_env

    cmd = [sys.executable, __file__, "--child", name, "--steps", str(steps)]
    env = training_allocator_env(os.environ) or dict(os.environ)
    return subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout.strip()


if __name__ == "__main__":
    main()
