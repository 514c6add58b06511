"""Throughput of `heroforge prepare` on synthetic heroes: images/s and peak memory, JSON line.

Goal: >= 20 images/s at 512 px on 2 cores (10,000 scraped pictures in under 10 minutes).
MediaPipe's detectors run only on pictures whose colour/shape cues are not decisive;
`--cues colour` measures the same run without them (what a machine without mediapipe gets).
`--enlarge 3` measures scraped full-resolution art instead: every picture enlarged 3x and
saved as a JPEG (510-2900 px).
Usage: python benchmarks/prepare_speed.py [--count 300] [--seed 11] [--workers 0]
       [--cues mediapipe|colour] [--enlarge 1]
"""

import argparse
import dataclasses
import json
import os
import resource
import tempfile
import time
from pathlib import Path

from PIL import Image

from heroforge.config import load_config
from heroforge.data.prepare import prepare
from heroforge.data.synth import synthesize


def _cpu_seconds() -> float:
    """User + system CPU time of this process and its finished worker processes."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _enlarge(raw: Path, factor: float) -> None:
    """Every picture enlarged and saved as a JPEG in its place (a scraped set's big files)."""
    for path in sorted(raw.iterdir()):
        with Image.open(path) as img:
            picture = img.convert("RGB")
        size = (round(picture.width * factor), round(picture.height * factor))
        picture.resize(size, Image.Resampling.BICUBIC).save(path.with_suffix(".jpg"), quality=92)
        if path.suffix != ".jpg":
            path.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--workers", type=int, default=0, help="0 = one per CPU core")
    parser.add_argument("--cues", choices=("mediapipe", "colour"), default="mediapipe")
    parser.add_argument("--enlarge", type=float, default=1.0, help="> 1: big JPEGs")
    args = parser.parse_args()
    cfg = dataclasses.replace(load_config("superheroes-512").prepare, human_cues=args.cues)
    with tempfile.TemporaryDirectory() as tmp:
        synthesize(Path(tmp) / "synth", args.count, seed=args.seed)
        if args.enlarge > 1:
            _enlarge(Path(tmp) / "synth" / "raw", args.enlarge)
        cpu_before = _cpu_seconds()
        start = time.perf_counter()
        summary = prepare(Path(tmp) / "synth" / "raw", Path(tmp) / "out", cfg, args.workers)
        seconds = time.perf_counter() - start
        cpu = _cpu_seconds() - cpu_before
    peak_mb = (
        max(
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
        )
        / 1024
    )
    record = {
        "benchmark": "prepare_speed",
        "count": args.count,
        "size": cfg.size,
        "enlarge": args.enlarge,
        "human_cues": summary.human_cues,
        "workers": args.workers or os.cpu_count(),
        "seconds": round(seconds, 1),
        "images_per_s": round(args.count / seconds, 2),
        # CPU time per picture does not depend on what else the machine is doing
        "cpu_ms_per_image": round(1000 * cpu / args.count, 1),
        "peak_rss_mb_per_process": round(peak_mb, 1),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(record))


if __name__ == "__main__":
    main()
