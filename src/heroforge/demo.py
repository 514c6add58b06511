"""`heroforge demo`: the whole product on synthetic heroes, small enough for a laptop CPU.

Each capability adds its stage here as it lands, so one command always shows everything that
works: synthetic heroes -> prepare -> archive -> short training -> samples, morph, child.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

from heroforge import rundir
from heroforge.config import Config, load_config

if TYPE_CHECKING:
    from heroforge.data.dataset import ImageDataset
    from heroforge.nets.generator import Generator

DEMO_SEED = 0
# 400 synthetic heroes prepare to about 200 pictures (203; 200 heroes gave 99) and x-flips
# double them again: the discriminator memorised 99 pictures within a kimg, so the same
# training teaches the generator more from more pictures, and with them the discriminator may
# learn 3x as fast as tiny-cpu lets it (d_lr 0.003 instead of 0.001; tiny-cpu's 5x slower
# discriminator was tuned on the 99). FID compares 256 generated images with the real ones
# (not 128 with 99), the same way at both ends: less small-sample bias. 18 kimg take about 7-11
# minutes of one core. benchmarks/train_learning.py measures it (the README's benchmark table;
# on the 199 pictures of an earlier prepare, d_lr 0.001 gave FID x0.592 / x0.489 / x0.484,
# 0.002 x0.533 / x0.494 / x0.439). The goal is x0.5.
DEMO_COUNT = 400
DEMO_OVERRIDES: tuple[str, ...] = ("data.mirror=true", "train.d_lr=0.003")  # changes to tiny-cpu
DEMO_KIMG = 18.0
DEMO_FID_IMAGES = 256  # generated images per FID: enough to see learning, quick on a CPU
# A 32 px network's convolutions are too small to gain much from a second thread: on an idle
# 2-core machine two threads train 1 kimg in 0.90 of one thread's time for 1.64x its CPU, and
# on a busy one they wait for each other (0.25 s per step with one thread, 1.2 s with two).
DEMO_THREADS = 1


def demo_config(overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """The demo's training configuration (tiny-cpu with DEMO_OVERRIDES), then `overrides`."""
    return load_config("tiny-cpu", [*DEMO_OVERRIDES, *overrides])


def fid_kid(
    generator: Generator, dataset: ImageDataset, cfg: Config, images: int
) -> tuple[float, float]:
    """FID and KID of a generator's images (on the CPU) against the dataset."""
    import dataclasses

    import torch

    from heroforge.metrics.evaluate import evaluate

    metrics = dataclasses.replace(cfg.metrics, kid=True)
    scores = evaluate(generator.eval(), dataset, metrics, torch.device("cpu"), images)
    assert scores is not None  # only the ranks after 0 of several processes get None
    return scores["fid"], scores["kid"]


def learning_check(archive: Path, cfg: Config, run_dir: Path, images: int) -> dict[str, float]:
    """FID and KID of the generator the run started from (same seed) and of its final G_ema:
    {"fid_start", "fid_end", "kid_start", "kid_end"}. KID is unbiased, so with a few hundred
    images it shows learning that FID's small-sample bias can hide."""
    from heroforge.data.dataset import ImageDataset
    from heroforge.nets.generator import build_generator
    from heroforge.nets.loading import load_latest
    from heroforge.train.seeding import seed_everything

    dataset = ImageDataset(archive, resolution=cfg.data.resolution)
    seed_everything(cfg.train.seed)
    untrained = build_generator(cfg, dataset.c_dim)
    trained = load_latest(run_dir / rundir.CHECKPOINTS)[0].loaded.generator("G_ema")
    result = {}
    for when, g in (("start", untrained), ("end", trained)):
        result[f"fid_{when}"], result[f"kid_{when}"] = fid_kid(g, dataset, cfg, images)
    return result


def run_demo(out: Path, console: Console) -> dict[str, Path]:
    """Run every stage into `out`; returns the main output path of each stage."""
    import torch

    from heroforge.data.archive import write_archive
    from heroforge.data.prepare import prepare
    from heroforge.data.synth import synthesize, write_contact_sheet
    from heroforge.generate import load_generator, write_child, write_morph, write_seed_images
    from heroforge.train import run as training

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
    cfg = demo_config()  # 32 px, upper and full body: enough pictures for a demo
    summary = prepare(heroes / "raw", prepared, cfg.prepare)
    reasons = ", ".join(f"{k} {v}" for k, v in sorted(summary.excluded.items()))
    console.print(f"kept {summary.kept} of {summary.inputs}; excluded: {reasons}")
    outputs["prepared pictures"] = prepared / "images"
    outputs["review sheet"] = prepared / "review.html"

    console.rule("3. archive: the training zip")
    archive = write_archive(prepared, out / "heroes.zip")
    console.print(f"{archive.images} pictures at {archive.resolution} px")
    outputs["training archive"] = out / "heroes.zip"

    recipe = ", ".join(DEMO_OVERRIDES)
    console.rule(
        f"4. train: StyleGAN2-ADA, tiny-cpu preset ({recipe}), {DEMO_KIMG:g} kimg on the CPU"
    )
    torch.set_num_threads(DEMO_THREADS)
    runs = out / "runs"
    shutil.rmtree(runs, ignore_errors=True)  # a rerun of the demo starts training afresh
    run_dir, _ = training.start(out / "heroes.zip", cfg, runs, DEMO_KIMG, log=console.print)
    grids = sorted((run_dir / rundir.SAMPLES).glob("grid-*.png"))
    outputs["training run"] = run_dir
    outputs["sample grid"] = grids[-1]

    console.rule("5. did it learn? FID of the untrained and the trained generator")
    check = learning_check(out / "heroes.zip", cfg, run_dir, DEMO_FID_IMAGES)
    fid_ratio = check["fid_end"] / check["fid_start"]
    kid_ratio = check["kid_end"] / max(check["kid_start"], 1e-12)
    console.print(
        f"FID {check['fid_start']:.1f} at initialisation -> {check['fid_end']:.1f} after training"
        f" (x{fid_ratio:.2f}); KID {check['kid_start']:.3f} -> {check['kid_end']:.3f}"
        f" (x{kid_ratio:.2f}; 0 is a perfect match)"
    )

    console.rule("6. generate: new heroes, a morph through latent space, a child of two heroes")
    model = load_generator(run_dir, "cpu")
    generated = out / "generated"
    images = write_seed_images(model, range(16), generated, truncation_psi=0.7, grid=True)
    outputs["new heroes"] = images[-1]
    outputs["morph"] = write_morph(model, [0, 1, 2, 3], generated, frames_per_step=12, loop=True)
    outputs["child panel"] = write_child(model, [0, 1], generated)["panel"]

    console.rule(f"demo finished in {time.perf_counter() - start:.0f} s")
    for what, path in outputs.items():
        console.print(f"{what:>14}: {path}")
    return outputs
