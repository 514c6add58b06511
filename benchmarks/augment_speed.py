"""Augmentation pipe throughput on the CPU: one JSON line per resolution and pass.

"forward" is augmenting a batch; "forward+backward" adds the gradient back to the images, as in
the generator's loss, where D's gradient flows through the pipe into G.

Usage: python benchmarks/augment_speed.py [--pipe bgc] [--p 0.6] [--batch 8] [--threads 0]
"""

import argparse
import json
import os
import time

import torch

from heroforge.augment import AugmentPipe


def images_per_second(pipe, batch, resolution, repeats, backward) -> float:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(batch, 3, resolution, resolution, generator=g) * 2 - 1
    x.requires_grad_(backward)

    def once() -> None:
        out = pipe(x, generator=g)
        if backward:
            out.square().mean().backward()

    once()  # warm-up: allocator and kernel selection
    start = time.perf_counter()
    for _ in range(repeats):
        once()
    return batch * repeats / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pipe", default="bgc")
    parser.add_argument("--p", type=float, default=0.6)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--resolutions", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, default=0, help="torch threads; 0 = torch's choice")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    pipe = AugmentPipe(args.pipe, p=args.p)
    for resolution in args.resolutions:
        for backward in (False, True):
            speed = images_per_second(pipe, args.batch, resolution, args.repeats, backward)
            record = {
                "benchmark": "augment_speed",
                "pipe": args.pipe,
                "p": args.p,
                "batch": args.batch,
                "resolution": resolution,
                "pass": "forward+backward" if backward else "forward",
                "threads": torch.get_num_threads(),
                "cpus": os.cpu_count(),
                "images_per_s": round(speed, 1),
            }
            print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
