"""Does the demo's short training learn? FID and KID at initialisation and at the end, JSON.

Builds the demo's data (the same synthetic heroes, prepared and archived at 32 px), trains the
demo's configuration (demo.demo_config: tiny-cpu with demo.DEMO_OVERRIDES, then --set) for the
demo's kimg (or --kimg) with the demo's one thread, then measures the
untrained generator (same seed) and the final G_ema against the training images. With --curve
it also measures every checkpoint, one line each. The goal (issue 6): the end value at most
half the start value. The demo's earlier recipe (200 heroes, no x-flips, tiny-cpu's D learning
rate 0.001, 12 kimg, FID with 128 images) is --count 200 --set data.mirror=false --set
train.d_lr=0.001 --kimg 12 --images 128.

--one-picture trains on 32 copies of the first prepared picture instead: a sanity check that
a GAN must pass quickly (it should end up drawing that picture, so FID falls far).

--precisions fp32,bf16 --seeds 0,1,2 trains once per (precision, seed) on the same data, one
record each (GAN curves are noisy: compare precisions over several seeds, not one run). A
precision other than fp32 needs reduced-precision blocks: tiny-cpu has none, so add e.g.
--set network.num_fp16_res=4 (then fp32 runs the same network wholly in fp32).

--count sets the number of synthetic heroes (demo.DEMO_COUNT by default; about half survive
prepare), --threads torch's threads (the demo's demo.DEMO_THREADS by default). --images takes
a comma-separated list (e.g. 128,256): each trained run is measured at each size, one record each,
so FID's small-sample bias can be told from learning without training again. train_cpu_seconds is
the process's CPU time: on a shared machine it tells the cost of a kimg better than wall time.

Usage: python benchmarks/train_learning.py [--kimg 10] [--images 128[,256]] [--curve]
       [--one-picture] [--precisions fp32,bf16] [--seeds 0,1,2] [--count 200] [--threads 1]
       [--set SECTION.KEY=VALUE ...] [--out DIR (keep the data and the runs; data found there
       is reused, so several runs started at once can share it)]
"""

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import torch

from heroforge import demo
from heroforge.config import Config
from heroforge.data.archive import write_archive
from heroforge.data.dataset import ImageDataset
from heroforge.data.prepare import prepare
from heroforge.data.synth import synthesize
from heroforge.train import run as training


def build_data(out: Path, one_picture: bool, count: int) -> Path:
    if not one_picture and (out / "heroes.zip").exists():
        return out / "heroes.zip"  # built by an earlier run into the same --out: reuse it
    synthesize(out / "heroes", count, seed=demo.DEMO_SEED)
    prepare(out / "heroes" / "raw", out / "prepared", demo.demo_config().prepare)
    if one_picture:
        first = sorted((out / "prepared" / "images").glob("*.png"))[0]
        copies = out / "one-picture"
        copies.mkdir(exist_ok=True)
        for i in range(32):
            shutil.copyfile(first, copies / f"{i:02d}.png")
        return copies
    write_archive(out / "prepared", out / "heroes.zip")
    return out / "heroes.zip"


def curve(archive: Path, cfg: Config, run_dir: Path, images: int, tags: dict) -> None:
    """FID/KID of every checkpoint's G_ema (the checkpoints of a run with keep_checkpoints high)."""
    from heroforge.data.dataset import ImageDataset
    from heroforge.nets.weights import load_networks
    from heroforge.rundir import list_checkpoints

    dataset = ImageDataset(archive, resolution=cfg.data.resolution)
    for path in sorted(list_checkpoints(run_dir / "checkpoints")):
        loaded = load_networks(path)
        fid, kid = demo.fid_kid(loaded.networks["G_ema"], dataset, cfg, images)
        kimg = loaded.metadata["nimg"] / 1000
        print(json.dumps({**tags, "kimg": kimg, "fid": fid, "kid": kid}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kimg", type=float, default=demo.DEMO_KIMG)
    parser.add_argument("--images", default=str(demo.DEMO_FID_IMAGES), help="e.g. 128,256")
    parser.add_argument("--curve", action="store_true")
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    parser.add_argument("--one-picture", action="store_true")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--precisions", help="comma-separated, e.g. fp32,bf16")
    parser.add_argument("--seeds", help="comma-separated train.seed values, e.g. 0,1,2")
    parser.add_argument("--count", type=int, default=demo.DEMO_COUNT, help="synthetic heroes")
    parser.add_argument("--threads", type=int, default=demo.DEMO_THREADS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        archive = build_data(out, args.one_picture, args.count)
        curve_keeps = ["train.keep_checkpoints=1000"] if args.curve else []
        for precision in args.precisions.split(",") if args.precisions else [None]:
            for seed in args.seeds.split(",") if args.seeds else [None]:
                chosen = [
                    *([f"train.precision={precision}"] if precision else []),
                    *([f"train.seed={seed}"] if seed else []),
                ]
                cfg = demo.demo_config([*args.overrides, *curve_keeps, *chosen])
                runs = out / "runs" / f"{precision or 'default'}-{seed or 'default'}"
                record(archive, cfg, runs, args, [*args.overrides, *chosen])


def record(
    archive: Path, cfg: Config, runs: Path, args: argparse.Namespace, overrides: list
) -> None:
    """Train one run and print its JSON records, one per FID size in --images (and, with
    --curve, one line per checkpoint at the first size)."""
    start, cpu_start = time.perf_counter(), time.process_time()
    run_dir, _ = training.start(archive, cfg, runs, args.kimg, log=lambda *_: None)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    sizes = [int(n) for n in args.images.split(",")]
    tags = {"precision": cfg.train.precision, "seed": cfg.train.seed}
    if args.curve:
        curve(archive, cfg, run_dir, sizes[0], tags)
    for images in sizes:
        check = demo.learning_check(archive, cfg, run_dir, images)
        result = {
            "benchmark": "train_learning",
            **tags,
            "kimg": args.kimg,
            "train_seconds": round(seconds, 1),
            "train_cpu_seconds": round(cpu_seconds, 1),
            "threads": args.threads,
            "count": args.count,
            "pictures": ImageDataset(archive).num_images,
            "images": images,
            "overrides": overrides,
            "one_picture": args.one_picture,
            **check,
            "fid_ratio": round(check["fid_end"] / check["fid_start"], 3),
            "kid_ratio": round(check["kid_end"] / check["kid_start"], 3),
            "goal": "ratio <= 0.5",
        }
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
