"""Generation speed on this CPU: one JSON line per figure.

Figures: the conv2d peak of this CPU (a large 3x3 convolution, best of both memory formats);
then for 64 and 256 px generators of the official "auto" config on 1 GPU (channel base 16384,
mapping depth 2; random weights: speed does not depend on them), batch 8, fp32:
- "network": the bare G(z) forward pass, images/s;
- "generate": heroforge.generate's path from seeds to uint8 pictures (seed -> z, mapping,
  synthesis, conversion), images/s, with the fraction of the conv peak its FLOPs reach;
- "generate_png": the same plus writing seedNNNN.png files (64 px only);
and for the animations at 64 px: "morph" (cubic-w walk rendered and written as a GIF) frames/s,
and "gif_encode" / "mp4_encode" (writing already rendered frames; mp4 only with the video
extra) frames/s.

FLOPs are counted exactly (torch FlopCounterMode, multiply-add = 2) on meta tensors.
Usage: python benchmarks/generate_speed.py [--resolutions 64 256] [--iters 3]
"""

import argparse
import json
import os
import tempfile
import time
from collections import Counter
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from cpu_reference import auto_config, conv_peak, environment
from heroforge.errors import UserError
from heroforge.generate.latents import resolve_keys
from heroforge.generate.model import wrap_generator
from heroforge.generate.morph import morph_frames, write_morph
from heroforge.generate.sample import generate_images, write_seed_images
from heroforge.generate.video import write_animation
from heroforge.nets.generator import build_generator
from heroforge.nets.modconv import PLANNER

BATCH = 8


def emit(**record):
    print(json.dumps({"benchmark": "generate_speed", **record}), flush=True)


def flops_per_image(cfg):
    with torch.device("meta"):
        gen = build_generator(cfg, modconv="split")
        z = torch.randn(BATCH, gen.z_dim)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        gen(z, noise_mode="const")
    return counter.get_total_flops() / BATCH


def timed(fn, iters):
    """(best wall seconds, mean CPU seconds) of iters runs after a warm-up (oneDNN
    primitives, modulated-conv timings). The best run is the one least slowed by other
    processes; CPU seconds (all threads, user + system) hardly depend on them at all."""
    fn()
    best, cpu = float("inf"), 0.0
    for _ in range(iters):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        best = min(best, time.perf_counter() - start)
        cpu += time.process_time() - start_cpu
    return best, cpu / iters


def load_fields():
    return {"load": round(os.getloadavg()[0], 2)}


def bench_resolution(resolution, iters, peak, common, tmp):
    cfg = auto_config(resolution, BATCH)
    flops = flops_per_image(cfg)
    PLANNER.choices.clear()
    model = wrap_generator(build_generator(cfg))
    z = torch.randn(BATCH, model.G.z_dim)
    seeds = list(range(BATCH))

    def network():
        with torch.inference_mode():
            model.G(z, noise_mode="const")

    figures = [
        ("network", network),
        ("generate", lambda: generate_images(model, seeds, batch_size=BATCH)),
    ]
    if resolution == 64:
        figures.append(("generate_png", lambda: write_seed_images(model, seeds, tmp / "png")))
    for figure, fn in figures:
        seconds, cpu = timed(fn, iters)
        emit(
            figure=figure,
            resolution=resolution,
            batch=BATCH,
            images_per_s=round(BATCH / seconds, 2),
            cpu_s_per_image=round(cpu / BATCH, 3),
            gflops_per_image=round(flops / 1e9, 3),
            peak_fraction=round(flops * BATCH / seconds / (peak * 1e9), 3),
            modconv=dict(Counter(PLANNER.choices.values())),
            **load_fields(),
            **common,
        )
    return model


def bench_animation(model, iters, common, tmp):
    frames_per_step, seeds = 8, [0, 1, 2]
    count = 2 * frames_per_step + 1

    def morph():
        write_morph(model, seeds, tmp, frames_per_step=frames_per_step, batch_size=BATCH)

    seconds, cpu = timed(morph, iters)
    emit(
        figure="morph",
        resolution=64,
        format="gif",
        frames_per_s=round(count / seconds, 2),
        cpu_s_per_frame=round(cpu / count, 3),
        **load_fields(),
        **common,
    )
    keys = resolve_keys(model, seeds)
    frames = list(morph_frames(model, [keys], frames_per_step, batch_size=BATCH))
    for fmt in ("gif", "mp4"):
        try:
            seconds, _ = timed(lambda f=fmt: write_animation(tmp / f"a.{f}", frames, 30, f), iters)
        except UserError as err:  # mp4 without the video extra: say so, go on
            emit(figure=f"{fmt}_encode", skipped=str(err))
            continue
        size = frames[0].shape[0]
        emit(
            figure=f"{fmt}_encode",
            resolution=size,
            frames_per_s=round(len(frames) / seconds, 1),
            **load_fields(),
            **common,
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--resolutions", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--iters", type=int, default=3, help="timed runs after a warm-up")
    parser.add_argument(
        "--return-memory",
        action="store_true",
        help="keep glibc's default of unmapping large freed blocks (for comparison)",
    )
    args = parser.parse_args()
    torch.manual_seed(0)
    common = environment(args.return_memory)
    peak = conv_peak(2.0)
    emit(figure="conv_peak", gflops=round(peak, 1), **load_fields(), **common)
    with tempfile.TemporaryDirectory() as tmp:
        models = {
            r: bench_resolution(r, args.iters, peak, common, Path(tmp)) for r in args.resolutions
        }
        if 64 in models:
            bench_animation(models[64], args.iters, common, Path(tmp))


if __name__ == "__main__":
    main()
