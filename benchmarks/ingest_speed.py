"""Safe ingest throughput: one JSON line with decoded images/s, from a folder and from a zip.

Lists and decodes (read_bytes + decode_image) every picture of a synthetic set in one process;
`prepare` spreads this over workers.

Usage: python benchmarks/ingest_speed.py [--count 200]
"""

import argparse
import json
import os
import tempfile
import time
import zipfile
from pathlib import Path

from heroforge.data.ingest import IngestLimits, decode_image, list_sources
from heroforge.data.synth import synthesize


def ingest(path: Path) -> tuple[int, float]:
    """(pictures decoded, seconds) for listing and decoding everything under path."""
    limits = IngestLimits()
    start = time.perf_counter()
    sources, _ = list_sources(path, limits)
    for source in sources:
        decode_image(source.read_bytes(limits), source.name, limits)
    return len(sources), time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp, "set")
        synthesize(out, args.count, seed=args.seed)
        raw = sorted((out / "raw").iterdir())
        megabytes = sum(path.stat().st_size for path in raw) / 2**20
        with zipfile.ZipFile(Path(tmp, "raw.zip"), "w", zipfile.ZIP_DEFLATED) as archive:
            for path in raw:
                archive.write(path, path.name)
        folder_count, folder_seconds = ingest(out / "raw")
        zip_count, zip_seconds = ingest(Path(tmp, "raw.zip"))
    record = {
        "benchmark": "ingest_speed",
        "count": folder_count,
        "megabytes": round(megabytes, 1),
        "cpus": os.cpu_count(),
        "seconds": round(folder_seconds, 2),
        "images_per_s": round(folder_count / folder_seconds, 1),
        "zip_images_per_s": round(zip_count / zip_seconds, 1),
    }
    print(json.dumps(record))


if __name__ == "__main__":
    main()
