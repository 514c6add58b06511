"""Synthetic hero generator throughput: one JSON line with images/s (goal >= 50 on 2 cores).

Usage: python benchmarks/synth_speed.py [--count 500] [--workers 0]
"""

import argparse
import json
import os
import tempfile
import time

from heroforge.data.synth import synthesize


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--workers", type=int, default=0, help="0 = one per CPU core")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        synthesize(os.path.join(tmp, "set"), args.count, seed=args.seed, workers=args.workers)
        seconds = time.perf_counter() - start
    record = {
        "benchmark": "synth_speed",
        "count": args.count,
        "workers": args.workers or os.cpu_count(),
        "cpus": os.cpu_count(),
        "seconds": round(seconds, 2),
        "images_per_s": round(args.count / seconds, 1),
    }
    print(json.dumps(record))


if __name__ == "__main__":
    main()
