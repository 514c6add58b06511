"""StyleGAN2 network speed on this machine: one JSON line per figure.

Figures: the conv2d peak of this CPU (a plain large 3x3 convolution), then for each resolution
of the official "auto" config on 1 GPU (channel base 16384 below 512 px, mapping depth 2):
generator images/s (inference, batch 8) and training-step images/s (G and D forward + backward
with the non-saturating logistic loss and Adam steps, no regularisers), each with its FLOPs per
image and the fraction of the measured conv peak that this reaches.

FLOPs are counted exactly (torch FlopCounterMode, multiply-add = 2) on meta tensors, so
counting costs no time. Usage: python benchmarks/nets_speed.py [--resolutions 64 256] [--iters 2]
"""

import argparse
import json
import os
import time
from collections import Counter
from functools import partial

import torch
import torch.nn.functional as nnf
from torch.utils.flop_counter import FlopCounterMode

from cpu_reference import auto_config, conv_peak, environment
from heroforge.nets.discriminator import build_discriminator
from heroforge.nets.generator import build_generator
from heroforge.nets.modconv import PLANNER

BATCH = 8


def emit(**record):
    print(json.dumps({"benchmark": "nets_speed", **record}), flush=True)


def train_step(gen, disc, opt_g, opt_d, real):
    """One non-saturating logistic step: G first (D frozen), then D on fakes and reals."""
    z = torch.randn(real.shape[0], gen.z_dim, device=real.device)
    disc.requires_grad_(False)
    nnf.softplus(-disc(gen(z, update_w_avg=True))).mean().backward()
    disc.requires_grad_(True)
    if opt_g is not None:
        opt_g.step()
        opt_g.zero_grad(set_to_none=True)
    with torch.no_grad():
        fake = gen(z)
    loss = nnf.softplus(disc(fake)).mean() + nnf.softplus(-disc(real)).mean()
    loss.backward()
    if opt_d is not None:
        opt_d.step()
        opt_d.zero_grad(set_to_none=True)


def generate(gen, z):
    with torch.no_grad():
        gen(z)


def count_flops(cfg):
    """FLOPs per image of a generator forward pass and of a training step, on meta tensors."""
    with torch.device("meta"):
        gen, disc = build_generator(cfg), build_discriminator(cfg)
        z = torch.randn(BATCH, gen.z_dim)
        real = torch.randn(BATCH, 3, cfg.data.resolution, cfg.data.resolution)
    counters = FlopCounterMode(display=False), FlopCounterMode(display=False)
    with counters[0]:
        gen(z)  # with autograd on: same FLOPs, and the module tracker wants it
    with counters[1]:
        train_step(gen, disc, None, None, real)
    return [c.get_total_flops() / BATCH for c in counters]


def timed(fn, iters):
    fn()  # warm-up: oneDNN primitives, allocations and the modulated-conv timings
    start = time.perf_counter()
    for _ in range(iters):
        fn()
    return (time.perf_counter() - start) / iters


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--resolutions", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--iters", type=int, default=2, help="timed iterations after warm-up")
    parser.add_argument("--modconv", default="auto", choices=["auto", "grouped", "split"])
    parser.add_argument(
        "--return-memory",
        action="store_true",
        help="keep glibc's default of unmapping large freed blocks (slower; for comparison)",
    )
    args = parser.parse_args()
    torch.manual_seed(0)
    common = environment(args.return_memory)
    load = os.getloadavg()[0]
    peak = conv_peak()
    emit(figure="conv_peak", gflops=round(peak, 1), load_before=round(load, 2), **common)
    for resolution in args.resolutions:
        cfg = auto_config(resolution, BATCH)
        gen_flops, train_flops = count_flops(cfg)
        gen, disc = build_generator(cfg, modconv=args.modconv), build_discriminator(cfg)
        opt_g = torch.optim.Adam(gen.parameters(), lr=0.0025, betas=(0.0, 0.99), eps=1e-8)
        opt_d = torch.optim.Adam(disc.parameters(), lr=0.0025, betas=(0.0, 0.99), eps=1e-8)
        z = torch.randn(BATCH, gen.z_dim)
        real = torch.randn(BATCH, 3, resolution, resolution)

        figures = [
            ("generator", gen_flops, partial(generate, gen, z)),
            ("train_step", train_flops, partial(train_step, gen, disc, opt_g, opt_d, real)),
        ]
        for figure, flops, fn in figures:
            PLANNER.choices.clear()
            # Other processes on these cores slow every figure; the 1-minute load average
            # (which counts this benchmark's own threads too) says whether there were any.
            load = os.getloadavg()[0]
            seconds = timed(fn, args.iters)
            emit(
                figure=figure,
                resolution=resolution,
                batch=BATCH,
                images_per_s=round(BATCH / seconds, 2),
                gflops_per_image=round(flops / 1e9, 2),
                peak_fraction=round(flops * BATCH / seconds / (peak * 1e9), 3),
                modconv=dict(Counter(PLANNER.choices.values()))
                if args.modconv == "auto"
                else args.modconv,
                load_before=round(load, 2),
                load_after=round(os.getloadavg()[0], 2),
                **common,
            )


if __name__ == "__main__":
    main()
