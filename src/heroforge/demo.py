"""`heroforge demo`: the whole product on synthetic heroes, small enough for a laptop CPU.

Each capability adds its stage here as it lands, so one command always shows everything that
works: synthetic heroes -> prepare -> archive -> short training -> samples, morph, child.
"""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console

DEMO_SEED = 0
DEMO_COUNT = 200


def run_demo(out: Path, console: Console) -> dict[str, Path]:
    """Run every stage into `out`; returns the main output path of each stage."""
    from heroforge.config import load_config
    from heroforge.data.archive import write_archive
    from heroforge.data.prepare import prepare
    from heroforge.data.synth import synthesize, write_contact_sheet

    out.mkdir(parents=True, exist_ok=True)
    outputs: dict[str, Path] = {}
    start = time.perf_counter()

    console.rule("1. synthetic heroes")
    heroes = out / "heroes"
    labels = synthesize(heroes, DEMO_COUNT, seed=DEMO_SEED)
    outputs["raw pictures"] = heroes / "raw"
    outputs["ground truth"] = heroes / "labels.json"
    outputs["contact sheet"] = write_contact_sheet(heroes, labels)
    console.print(f"{len(labels)} pictures of heroes and outliers")

    console.rule("2. prepare: outliers out, backgrounds removed, squares on white")
    prepared = out / "prepared"
    cfg = load_config("superheroes-512", ["prepare.size=128"]).prepare
    summary = prepare(heroes / "raw", prepared, cfg)
    reasons = ", ".join(f"{k} {v}" for k, v in sorted(summary["excluded"].items()))
    console.print(f"kept {summary['kept']} of {summary['inputs']}; excluded: {reasons}")
    outputs["prepared pictures"] = prepared / "images"
    outputs["review sheet"] = prepared / "review.html"

    console.rule("3. archive: the training zip")
    archive = write_archive(prepared, out / "heroes.zip")
    console.print(f"{archive['images']} pictures at {archive['resolution']} px")
    outputs["training archive"] = out / "heroes.zip"

    console.rule(f"demo finished in {time.perf_counter() - start:.0f} s")
    for what, path in outputs.items():
        console.print(f"{what:>14}: {path}")
    return outputs
