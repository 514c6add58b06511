"""`heroforge project`: find the latent that makes a model draw a real picture.

Options and model loading are shared with generate.py; the library (heroforge.generate.project)
is imported inside the command so that `heroforge --help` stays instant.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from heroforge.commands.base import add_command
from heroforge.commands.generate import ClassIdx, Device, Model, Outdir, open_model
from heroforge.console import console, progress_bar

PROJECT_EPILOG = (
    "Examples:\n\n"
    "  heroforge project --model runs/00000-superheroes-512 --target batman.png --outdir out\n\n"
    "  heroforge project --model runs/00000-superheroes-512 --target superwoman.jpg --w-plus "
    "--steps 500 --video --outdir out\n\n"
    "  heroforge project --model runs/00000-superheroes-512 --target prepared/images/hero.png "
    "--raw --video --format gif --outdir out\n\n"
    "  heroforge child --model runs/00000-superheroes-512 "
    "--parents out/batman.latent.safetensors,out/superwoman.latent.safetensors --outdir out"
)


def project_command(
    model: Model,
    target: Annotated[
        Path, typer.Option("--target", help="The picture to find in the model (PNG, JPEG...).")
    ],
    outdir: Outdir,
    steps: Annotated[
        int,
        typer.Option(
            "--steps",
            "--num-steps",  # official projector.py
            help="Optimisation steps (200 for a first look).",
        ),
    ] = 1000,
    w_plus: Annotated[
        bool,
        typer.Option("--w-plus", help="One latent per layer: closer fit, less typical hero."),
    ] = False,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the search's randomness.")] = 0,
    raw: Annotated[
        bool,
        typer.Option("--raw", help="The picture is prepared already: only pad it square on white."),
    ] = False,
    video: Annotated[
        bool, typer.Option("--video/--no-video", help="Also animate the optimisation.")
    ] = False,
    fmt: Annotated[
        str, typer.Option("--format", help="Video format: mp4 (video extra) or gif.")
    ] = "mp4",
    lr: Annotated[float, typer.Option("--lr", help="Peak learning rate.")] = 0.1,
    class_idx: ClassIdx = None,
    device: Device = None,
) -> None:
    """Find the latent that makes the model draw a real picture, saved for child and morph.

    The picture is prepared like training data (subject cut out, on white, square), then the
    latent is optimised to reproduce it: OUTDIR/NAME.latent.safetensors (a hero for child,
    morph and mix), NAME-target.png, NAME-projected.png and with --video the optimisation.
    """
    from heroforge.generate.output import prepare_outdir
    from heroforge.generate.project import ProjectSettings, check_project, write_projection
    from heroforge.generate.target import read_target

    settings = ProjectSettings(steps=steps, w_plus=w_plus, seed=seed, lr=lr)
    check_project(video, fmt, fps=24)
    read_target(target)  # an unreadable picture is refused before the model loads
    prepare_outdir(outdir)
    loaded = open_model(model, device)

    def log(message: str) -> None:
        console.print(f"note: {message}", markup=False, highlight=False)

    with progress_bar() as bar:
        task = bar.add_task("project", total=steps)
        result = write_projection(
            loaded,
            target,
            outdir,
            settings,
            raw=raw,
            class_idx=class_idx,
            video=video,
            fmt=fmt,
            progress=lambda done, total: bar.update(task, completed=done),
            log=log,
        )
    for what, path in result.paths.items():
        console.print(f"{what}: {path}", markup=False)
    console.print(
        f"loss {result.losses[0]:.4f} -> {result.losses[-1]:.4f}, "
        f"mean pixel error {result.pixel_error:.1f} of 255",
        markup=False,
    )


def register(app: typer.Typer) -> None:
    add_command(app, project_command, "project", epilog=PROJECT_EPILOG)
