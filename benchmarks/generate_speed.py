"""Generation speed, and how far reduced precision moves the pictures: one JSON line per figure.

Figures: the conv2d peak of this CPU (a large 3x3 convolution, best of both memory formats;
CPU only); then for each network (64 and 256 px generators of the official "auto" config on 1
GPU: channel base 16384, mapping depth 2, its num_fp16_res = 4 top resolutions reduced-precision
blocks, random weights; --tiny adds the tiny-cpu net with 4 such blocks; --model adds a saved
one) and each --precision, batch 8, alternating between the precisions (this machine's speed
drifts: each figure compares runs made side by side):
- "network": the bare G(z) forward pass, images/s (with --compile also under torch.compile);
- "generate": heroforge.generate's path from seeds to uint8 pictures (seed -> z, mapping,
  synthesis, conversion), images/s, with the fraction of the conv peak its FLOPs reach;
- "generate_png": the same plus writing seedNNNN.png files (64 px only);
- "pixels": against fp32, the largest and the mean difference in grey levels (0-255) of the
  pictures of seeds 0-63 (the official seed -> picture parity allows 1);
and for the animations at 64 px: "morph" (cubic-w walk rendered and written as a GIF) frames/s,
and "gif_encode" / "mp4_encode" (writing already rendered frames; mp4 only with the video
extra) frames/s.

FLOPs are counted exactly (torch FlopCounterMode, multiply-add = 2) on meta tensors.
Usage: python benchmarks/generate_speed.py [--resolutions 64 256] [--tiny] [--model PATH]
       [--precision fp32 bf16] [--compile] [--iters 3] [--device cuda]
       (on a GPU, the reference config: --device cuda --resolutions 512 --precision fp16 fp32)
"""

import argparse
import dataclasses
import json
import os
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from cpu_reference import auto_config, conv_peak, environment
from heroforge.config import Config, load_config
from heroforge.errors import UserError
from heroforge.generate.latents import resolve_keys
from heroforge.generate.model import LoadedGenerator, load_generator, set_precision, wrap_generator
from heroforge.generate.morph import morph_frames, write_morph
from heroforge.generate.sample import generate_images, write_seed_images
from heroforge.generate.video import write_animation
from heroforge.nets.generator import build_generator
from heroforge.nets.loading import load_model
from heroforge.nets.modconv import PLANNER

BATCH = 8
PARITY_SEEDS = list(range(64))


def emit(**record):
    print(json.dumps({"benchmark": "generate_speed", **record}), flush=True)


def reduced_config(cfg: Config) -> Config:
    """cfg as the default precision "auto" trains it: the top num_fp16_res blocks may run in a
    reduced type (auto_config pins training to fp32, which builds none)."""
    return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, precision="auto"))


def nets(args) -> dict[str, tuple[Config, LoadedGenerator]]:
    """name -> (config, generator on args.device) of every network to measure."""
    out = {}
    for resolution in args.resolutions:
        cfg = reduced_config(auto_config(resolution, BATCH))
        out[f"auto{resolution}"] = (cfg, wrap_generator(build_generator(cfg).to(args.device)))
    if args.tiny:
        cfg = load_config("tiny-cpu", ["network.num_fp16_res=4"])
        out["tiny"] = (cfg, wrap_generator(build_generator(cfg).to(args.device)))
    for path in args.model:
        out[str(path)] = with_reduced_blocks(path, args.device)
    return out


def with_reduced_blocks(path: Path, device: str) -> tuple[Config, LoadedGenerator]:
    """A saved generator; one trained with precision fp32 has no reduced-precision blocks,
    so its weights go into the network that "auto" would have built."""
    model = load_generator(path, device)
    cfg = reduced_config(load_model(path, device)[0].cfg)
    if cfg.network.num_fp16_res == 0:
        cfg = dataclasses.replace(cfg, network=dataclasses.replace(cfg.network, num_fp16_res=4))
    gen = build_generator(cfg, c_dim=model.c_dim).to(model.device)
    gen.load_state_dict(model.G.state_dict(), strict=False)  # FIR filter buffers: not stored
    return cfg, wrap_generator(gen, path)


def flops_per_image(cfg):
    with torch.device("meta"):
        gen = build_generator(cfg, modconv="split")
        z = torch.randn(BATCH, gen.z_dim)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        gen(z, noise_mode="const")
    return counter.get_total_flops() / BATCH


def timed(fn, iters):
    """Best wall seconds of iters runs after a warm-up."""
    fn()
    best = float("inf")
    for _ in range(iters):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def timed_side_by_side(model, fns, iters):
    """{precision: (best wall seconds, mean CPU seconds)} of iters rounds, each precision in
    turn, after a warm-up (oneDNN primitives, modulated-conv timings). The best run is the one
    least slowed by other processes; CPU seconds (all threads, user + system) hardly depend on
    them at all."""
    best = dict.fromkeys(fns, float("inf"))
    cpu = dict.fromkeys(fns, 0.0)
    for precision, fn in fns.items():
        set_precision(model, precision)
        fn()
    for _ in range(iters):
        for precision, fn in fns.items():
            set_precision(model, precision)
            start, start_cpu = time.perf_counter(), time.process_time()
            fn()
            if model.device.type == "cuda":
                torch.cuda.synchronize(model.device)
            best[precision] = min(best[precision], time.perf_counter() - start)
            cpu[precision] += time.process_time() - start_cpu
    return {p: (best[p], cpu[p] / iters) for p in fns}


def load_fields():
    return {"load": round(os.getloadavg()[0], 2)}


def bench_net(name, cfg, model, args, peak, common, tmp):
    flops = flops_per_image(cfg)
    PLANNER.choices.clear()
    z = torch.randn(BATCH, model.G.z_dim, device=model.device)
    seeds = list(range(BATCH))

    def network(generator=model.G):
        with torch.inference_mode():
            generator(z, noise_mode="const")

    figures = {
        "network": network,
        "generate": lambda: generate_images(model, seeds, batch_size=BATCH),
    }
    if cfg.data.resolution == 64:
        figures["generate_png"] = lambda: write_seed_images(model, seeds, tmp / "png")
    if args.compile:
        compiled = torch.compile(model.G)
        figures["network_compiled"] = lambda: network(compiled)
    for figure, fn in figures.items():
        times = timed_side_by_side(model, dict.fromkeys(args.precision, fn), args.iters)
        for precision, (seconds, cpu) in times.items():
            set_precision(model, precision)
            emit(
                figure=figure,
                net=name,
                resolution=cfg.data.resolution,
                batch=BATCH,
                precision=model.precision,
                images_per_s=round(BATCH / seconds, 2),
                cpu_s_per_image=round(cpu / BATCH, 3),
                gflops_per_image=round(flops / 1e9, 3),
                peak_fraction=round(flops * BATCH / seconds / (peak * 1e9), 3) if peak else None,
                modconv=dict(Counter(PLANNER.choices.values())),
                **load_fields(),
                **common,
            )
    bench_pixels(name, model, args.precision)


def bench_pixels(name, model, precisions):
    """The largest and mean difference of each precision's pictures from the fp32 ones."""
    pictures = {}
    for precision in ("fp32", *precisions):
        set_precision(model, precision)
        images = generate_images(model, PARITY_SEEDS, batch_size=BATCH)
        pictures[model.precision] = np.stack([np.asarray(i) for i in images]).astype(int)
    for precision, images in pictures.items():
        if precision != "fp32":
            diff = np.abs(images - pictures["fp32"])
            emit(
                figure="pixels",
                net=name,
                precision=precision,
                seeds=f"0-{len(PARITY_SEEDS) - 1}",
                max_levels=int(diff.max()),
                mean_levels=round(float(diff.mean()), 3),
                within_1_level=round(float((diff <= 1).mean()), 4),
            )


def bench_animation(model, args, common, tmp):
    frames_per_step, seeds = 8, [0, 1, 2]
    count = 2 * frames_per_step + 1

    def morph():
        write_morph(model, seeds, tmp, frames_per_step=frames_per_step, batch_size=BATCH)

    times = timed_side_by_side(model, dict.fromkeys(args.precision, morph), args.iters)
    for precision, (seconds, cpu) in times.items():
        set_precision(model, precision)
        emit(
            figure="morph",
            resolution=64,
            format="gif",
            precision=model.precision,
            frames_per_s=round(count / seconds, 2),
            cpu_s_per_frame=round(cpu / count, 3),
            **load_fields(),
            **common,
        )
    set_precision(model, args.precision[0])
    keys = resolve_keys(model, seeds)
    frames = list(morph_frames(model, [keys], frames_per_step, batch_size=BATCH))
    for fmt in ("gif", "mp4"):
        try:
            path = tmp / f"a.{fmt}"
            seconds = timed(lambda f=fmt, p=path: write_animation(p, frames, 30, f), args.iters)
        except UserError as err:  # mp4 without the video extra: say so, go on
            emit(figure=f"{fmt}_encode", skipped=str(err))
            continue
        emit(
            figure=f"{fmt}_encode",
            resolution=frames[0].shape[0],
            frames_per_s=round(len(frames) / seconds, 1),
            **load_fields(),
            **common,
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--resolutions", type=int, nargs="*", default=[64, 256])
    parser.add_argument("--tiny", action="store_true", help="also the tiny-cpu net (32 px)")
    parser.add_argument("--model", type=Path, action="append", default=[], help="a saved model")
    parser.add_argument(
        "--precision",
        nargs="+",
        default=["auto"],
        choices=["auto", "fp32", "bf16", "fp16"],
        help="the precisions to measure side by side (auto: what `heroforge generate` uses)",
    )
    parser.add_argument("--compile", action="store_true", help="also time torch.compile(G)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--iters", type=int, default=3, help="timed runs after a warm-up")
    parser.add_argument(
        "--return-memory",
        action="store_true",
        help="keep glibc's default of unmapping large freed blocks (for comparison)",
    )
    args = parser.parse_args()
    torch.manual_seed(0)
    common = environment(args.return_memory)
    common["device"] = args.device
    peak = None
    if args.device == "cpu":
        peak = conv_peak(2.0)
        emit(figure="conv_peak", gflops=round(peak, 1), **load_fields(), **common)
    with tempfile.TemporaryDirectory() as tmp:
        models = nets(args)
        for name, (cfg, model) in models.items():
            bench_net(name, cfg, model, args, peak, common, Path(tmp))
        if "auto64" in models:
            bench_animation(models["auto64"][1], args, common, Path(tmp))


if __name__ == "__main__":
    main()
