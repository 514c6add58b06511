"""Feeding training: how fast data workers decode, and how much of a step waits for data.

1. Loader throughput at 512 px from a training archive: chunks of 4 images in the order the
   trainer takes them (x-flips on), decoded by 0 (in this process), 1 and 2 workers; img/s and
   img/s per worker, and the CPU time per image left in the training process.
2. A tiny-cpu training step (32 px archive of the same pictures, every phase): the share of
   the step spent in RealChunks.chunk, i.e. waiting for decoded images, with 0 and 2 workers.

The archives hold synthetic heroes (`heroforge synth`) scaled to the size and packed with
write_archive, as `heroforge archive` does. One JSON line per figure.

Usage: python benchmarks/data_speed.py [--images 64] [--chunks 48] [--steps 10]
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image

from heroforge.config import load_config
from heroforge.data.archive import write_archive
from heroforge.data.dataset import ImageDataset
from heroforge.data.loader import ChunkLoader
from heroforge.data.synth import synthesize
from heroforge.runtime.dist import DistInfo
from heroforge.train.loop import Trainer
from heroforge.train.sampler import EpochOrder
from heroforge.train.stats import TickStats

CHUNK = 4  # images per chunk, as in a 512 px run with batch_gpu 4


def build_archive(raw: Path, side: int, out: Path) -> Path:
    """The synthetic pictures scaled to side x side RGB PNGs, packed as a training archive."""
    images = out.parent / f"prepared-{side}" / "images"
    images.mkdir(parents=True)
    for path in sorted((raw / "raw").iterdir()):  # synth writes several formats
        with Image.open(path) as img:
            picture = img.convert("RGB").resize((side, side), Image.Resampling.LANCZOS)
        picture.save(images / f"{path.stem}.png")
    write_archive(images.parent, out)
    return out


def loader_speed(archive: Path, workers: int, chunks: int) -> dict:
    dataset = ImageDataset(archive, mirror=True)
    order = EpochOrder(len(dataset), seed=0)
    loader = ChunkLoader(dataset, workers, pin_memory=False)
    loader.start(order.indices(k * CHUNK, CHUNK) for k in range(chunks + 8))
    for _ in range(8):  # warm-up: workers started, zips opened, prefetch filled
        loader.next()
    started, cpu_started = time.perf_counter(), time.process_time()
    for _ in range(chunks):
        loader.next()
    seconds = time.perf_counter() - started
    main_cpu = time.process_time() - cpu_started
    loader.close()
    img_per_s = chunks * CHUNK / seconds
    return {
        "figure": "loader_img_per_s",
        "resolution": dataset.resolution,
        "workers": workers,
        "img_per_s": round(img_per_s, 1),
        "img_per_s_per_worker": round(img_per_s / max(workers, 1), 1),
        # CPU time of the training process per image: all of the decoding without workers,
        # only the hand-over (shared memory) with them. Unlike img/s, it does not depend on
        # how busy the machine is.
        "main_cpu_ms_per_img": round(1000 * main_cpu / (chunks * CHUNK), 2),
    }


def data_wait_share(archive: Path, workers: int, steps: int) -> dict:
    overrides = ["train.batch=8", "train.pl_weight=2", "train.style_mixing=0.9"]
    cfg = load_config("tiny-cpu", [*overrides, "data.mirror=true", f"data.workers={workers}"])
    dataset = ImageDataset(archive, resolution=cfg.data.resolution, mirror=True)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(cfg, dataset, Path(tmp), DistInfo(0, 1, torch.device("cpu")))
        waited = [0.0]
        fetch = trainer.reals.chunk

        def timed_chunk(nimg: int, chunk: int) -> tuple[torch.Tensor, torch.Tensor | None]:
            started = time.perf_counter()
            try:
                return fetch(nimg, chunk)
            finally:
                waited[0] += time.perf_counter() - started

        trainer.reals.chunk = timed_chunk  # type: ignore[method-assign]
        stats = TickStats()
        for _ in range(2):  # warm-up
            trainer.step(stats)
        waited[0] = 0.0
        started = time.perf_counter()
        for _ in range(steps):
            trainer.step(stats)
        seconds = time.perf_counter() - started
        trainer.reals.close()
    return {
        "figure": "train_step_data_wait",
        "preset": "tiny-cpu",
        "batch": cfg.train.batch,
        "resolution": cfg.data.resolution,
        "workers": workers,
        "step_ms": round(1000 * seconds / steps, 1),
        "data_wait_ms": round(1000 * waited[0] / steps, 2),
        "data_wait_share": round(waited[0] / seconds, 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=64, help="synthetic pictures in the set")
    parser.add_argument("--chunks", type=int, default=48, help="chunks of 4 timed per setting")
    parser.add_argument("--steps", type=int, default=10, help="training steps timed")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "synth"
        synthesize(raw, args.images, seed=5)
        big = build_archive(raw, 512, Path(tmp) / "set-512.zip")
        for workers in (0, 1, 2):
            print(json.dumps(loader_speed(big, workers, args.chunks)), flush=True)
        small = build_archive(raw, 32, Path(tmp) / "set-32.zip")
        for workers in (0, 2):
            print(json.dumps(data_wait_share(small, workers, args.steps)), flush=True)


if __name__ == "__main__":
    main()
