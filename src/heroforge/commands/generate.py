"""`heroforge generate | morph | child | mix`: pictures from a trained model (`project`, which
finds a real picture's latent, is in project.py; it shares these options).

They parse and check every argument before loading the model, then call the library
(heroforge.generate.*), which is imported inside the commands so that `heroforge --help`
stays instant.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from heroforge.commands.base import add_command
from heroforge.console import console, progress_bar

if TYPE_CHECKING:
    from heroforge.generate.model import LoadedGenerator

Model = Annotated[
    str,
    typer.Option(
        "--model",
        "--network",  # the official scripts' name
        help="Run folder (its best, else newest checkpoint), checkpoints folder, "
        ".safetensors network file, or an official .pkl (read without running its code).",
    ),
]
Outdir = Annotated[Path, typer.Option("--outdir", help="Folder for the outputs (created).")]
Trunc = Annotated[
    float,
    typer.Option("--trunc", help="Truncation psi: below 1 = more typical heroes (0.7 is common)."),
]
Noise = Annotated[
    str,
    typer.Option(
        "--noise",
        "--noise-mode",  # the official scripts' name
        help="Per-pixel noise: const (reproducible), random or none.",
    ),
]
ClassIdx = Annotated[
    int | None, typer.Option("--class", help="Class to draw (conditional models only).")
]
Batch = Annotated[int, typer.Option("--batch", help="Pictures per forward pass.")]
Device = Annotated[
    str | None,
    typer.Option("--device", help="cpu, cuda, cuda:1, ... (default: cuda if there is one)"),
]
Precision = Annotated[
    str,
    typer.Option(
        "--precision",
        help="Type of the top-resolution blocks: auto (fp16 on CUDA, fp32 on the CPU: the "
        "official pictures), fp32, bf16 (faster on CPUs with AVX-512 BF16 or AMX; pictures a "
        "few grey levels off) or fp16 (CUDA only).",
    ),
]


def _check_device(device: str | None, precision: str) -> None:
    """--device and --precision, refused in one line before anything is written or loaded."""
    from heroforge.generate.model import check_precision, parse_device

    check_precision(precision, parse_device(device))


def open_model(model: str, device: str | None, precision: str = "auto") -> LoadedGenerator:
    """The generator of --model on --device, with what was loaded (and any note) printed."""
    from heroforge.generate.model import load_generator, parse_device
    from heroforge.runtime.allocator import keep_freed_memory

    if parse_device(device).type == "cpu":
        # Measured at 256 px, batch 8: a quarter of the CPU time went to the kernel mapping
        # and unmapping activations; this short-lived process can keep its memory instead.
        keep_freed_memory()
    loaded = load_generator(model, device, precision)
    for note in loaded.notes:
        console.print(f"note: {note}", markup=False, highlight=False)
    console.print(
        f"model: {loaded.source} ({loaded.network}) on {loaded.device}, {loaded.precision}",
        markup=False,
    )
    return loaded


GENERATE_EPILOG = (
    "Examples:\n\n"
    "  heroforge generate --model runs/00000-superheroes-512 --seeds 0-99 --outdir out\n\n"
    "  heroforge generate --model runs/00000-superheroes-512 --seeds 12,40,77 --trunc 0.7 --grid "
    "--outdir out\n\n"
    "  heroforge generate --model model/network.safetensors --seeds 0-7 --class 2 --outdir out\n\n"
    "  heroforge generate --model runs/00000-superheroes-512 --seeds 0-999 --precision bf16 "
    "--outdir out"
)


def generate_command(
    model: Model,
    seeds: Annotated[str, typer.Option("--seeds", help="Seeds and ranges, e.g. 0-99,123.")],
    outdir: Outdir,
    trunc: Trunc = 1.0,
    noise: Noise = "const",
    class_idx: ClassIdx = None,
    grid: Annotated[bool, typer.Option("--grid", help="Also write grid.png.")] = False,
    batch: Batch = 8,
    device: Device = None,
    precision: Precision = "auto",
) -> None:
    """Draw one hero per seed: OUTDIR/seed0042.png, ... with the settings in each PNG.

    Seed N gives the hero that the official StyleGAN2-ADA generate.py gives for seed N with
    the same model, truncation and noise, so favourite seeds of imported models keep working.
    """
    from heroforge.generate.output import prepare_outdir
    from heroforge.generate.sample import check_settings, write_seed_images
    from heroforge.generate.seeds import parse_seeds

    seed_list = parse_seeds(seeds)
    check_settings(trunc, noise, batch)
    _check_device(device, precision)
    prepare_outdir(outdir)
    loaded = open_model(model, device, precision)
    with progress_bar() as bar:
        task = bar.add_task("generate", total=len(seed_list))
        paths = write_seed_images(
            loaded,
            seed_list,
            outdir,
            truncation_psi=trunc,
            noise_mode=noise,
            class_idx=class_idx,
            batch_size=batch,
            grid=grid,
            progress=lambda done, total: bar.update(task, completed=done),
        )
    console.print(f"wrote {len(seed_list)} heroes to {outdir}", markup=False)
    if grid:
        console.print(f"grid: {paths[-1]}", markup=False)


MORPH_EPILOG = (
    "Examples:\n\n"
    "  heroforge morph --model runs/00000-superheroes-512 --seeds 12,40,77 --loop --outdir out\n\n"
    "  heroforge morph --model runs/00000-superheroes-512 --seeds 12,40,77 --frames-per-step 60 "
    "--format mp4 --outdir out\n\n"
    "  heroforge morph --model runs/00000-superheroes-512 --seeds 0-11 --grid 2x3 --interp lerp-w "
    "--outdir out\n\n"
    "  heroforge morph --model runs/00000-superheroes-512 --seeds 12,out/child.latent.safetensors "
    "--outdir out"
)


def morph_command(
    model: Model,
    seeds: Annotated[
        str,
        typer.Option(
            "--seeds", help="Heroes to pass through: seeds, ranges and .latent.safetensors files."
        ),
    ],
    outdir: Outdir,
    frames_per_step: Annotated[
        int, typer.Option("--frames-per-step", help="Frames from one hero to the next.")
    ] = 30,
    interp: Annotated[
        str,
        typer.Option("--interp", help="cubic-w (smooth through keys), lerp-w or slerp-z."),
    ] = "cubic-w",
    loop: Annotated[bool, typer.Option("--loop", help="Come back to the first hero.")] = False,
    grid: Annotated[
        str | None,
        typer.Option("--grid", help="ROWSxCOLS walks side by side; the seeds split between them."),
    ] = None,
    fps: Annotated[float, typer.Option("--fps", help="Frames per second.")] = 30.0,
    fmt: Annotated[str, typer.Option("--format", help="gif, or mp4 (video extra).")] = "gif",
    trunc: Trunc = 1.0,
    noise: Noise = "const",
    class_idx: ClassIdx = None,
    batch: Batch = 8,
    device: Device = None,
    precision: Precision = "auto",
) -> None:
    """Animate a walk through heroes (GIF or MP4), or a grid of walks."""
    from heroforge.generate.morph import check_morph, write_morph
    from heroforge.generate.output import prepare_outdir
    from heroforge.generate.sample import check_settings
    from heroforge.generate.seeds import parse_grid, parse_keys

    keys = parse_keys(seeds)
    shape = (1, 1) if grid is None else parse_grid(grid)
    check_morph(len(keys), frames_per_step, interp, loop, shape, fps, fmt)
    check_settings(trunc, noise, batch)
    _check_device(device, precision)
    prepare_outdir(outdir)
    loaded = open_model(model, device, precision)
    with progress_bar() as bar:
        task = bar.add_task("morph", total=None)
        path = write_morph(
            loaded,
            keys,
            outdir,
            frames_per_step=frames_per_step,
            interp=interp,
            loop=loop,
            grid=shape,
            fps=fps,
            fmt=fmt,
            truncation_psi=trunc,
            noise_mode=noise,
            class_idx=class_idx,
            batch_size=batch,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    console.print(f"animation: {path}", markup=False)


CHILD_EPILOG = (
    "Examples:\n\n"
    "  heroforge child --model runs/00000-superheroes-512 --parents 12,40 --outdir out\n\n"
    "  heroforge child --model runs/00000-superheroes-512 --parents 12,40 --weight 0.3 "
    "--outdir out\n\n"
    "  heroforge child --model runs/00000-superheroes-512 --parents 12,40 --mode coarse-from-a "
    "--outdir out\n\n"
    "  heroforge child --model runs/00000-superheroes-512 "
    "--parents out/child-seed12-seed40-blend50.latent.safetensors,7 --outdir out"
)


def child_command(
    model: Model,
    parents: Annotated[
        str,
        typer.Option("--parents", help="Two heroes: seeds or .latent.safetensors files, A,B."),
    ],
    outdir: Outdir,
    weight: Annotated[
        float | None,
        typer.Option("--weight", help="blend: parent B's share, 0 to 1 (default 0.5)."),
    ] = None,
    mode: Annotated[
        str, typer.Option("--mode", help="blend, coarse-from-a or fine-from-a.")
    ] = "blend",
    coarse_res: Annotated[
        int | None,
        typer.Option(
            "--coarse-res",
            help="Mixing modes: layers up to this resolution count as coarse (default 16).",
        ),
    ] = None,
    trunc: Trunc = 1.0,
    noise: Noise = "const",
    class_idx: ClassIdx = None,
    device: Device = None,
    precision: Precision = "auto",
) -> None:
    """Make the child of two heroes, with a panel parent A | child | parent B.

    blend mixes the parents' latents on every layer; coarse-from-a takes pose and build from A
    and colours and details from B; fine-from-a the other way round. The child's latent is
    saved too, so it can be a parent (or a morph key) in turn.
    """
    from heroforge.generate.child import check_child, write_child
    from heroforge.generate.output import prepare_outdir
    from heroforge.generate.sample import check_settings
    from heroforge.generate.seeds import parse_keys

    keys = parse_keys(parents)
    check_child(len(keys), weight, mode, coarse_res)
    check_settings(trunc, noise, 1)
    _check_device(device, precision)
    prepare_outdir(outdir)
    loaded = open_model(model, device, precision)
    paths = write_child(
        loaded,
        keys,
        outdir,
        weight=weight,
        mode=mode,
        coarse_res=coarse_res,
        truncation_psi=trunc,
        noise_mode=noise,
        class_idx=class_idx,
    )
    for what, path in paths.items():
        console.print(f"{what}: {path}", markup=False)


MIX_EPILOG = (
    "Examples:\n\n"
    "  heroforge mix --model runs/00000-superheroes-512 --rows 1,2,3 --cols 4,5,6 --outdir out\n\n"
    "  heroforge mix --model runs/00000-superheroes-512 --rows 1-4 --cols 10-14 --layers 8-13 "
    "--outdir out"
)


def mix_command(
    model: Model,
    rows: Annotated[
        str, typer.Option("--rows", help="Heroes of the rows (they keep the other layers).")
    ],
    cols: Annotated[
        str, typer.Option("--cols", help="Heroes of the columns (they give --layers).")
    ],
    outdir: Outdir,
    layers: Annotated[
        str | None,
        typer.Option(
            "--layers",
            "--styles",  # official style_mixing.py
            help="Layers taken from the column heroes (default 0-6).",
        ),
    ] = None,
    trunc: Trunc = 1.0,
    noise: Noise = "const",
    class_idx: ClassIdx = None,
    batch: Batch = 8,
    device: Device = None,
    precision: Precision = "auto",
) -> None:
    """Write a style-mixing grid: every row hero with some layers from every column hero."""
    from heroforge.generate.mix import MAX_SIDE, write_mix
    from heroforge.generate.output import prepare_outdir
    from heroforge.generate.sample import check_settings
    from heroforge.generate.seeds import parse_keys, parse_layers

    row_keys, col_keys = parse_keys(rows, MAX_SIDE), parse_keys(cols, MAX_SIDE)
    check_settings(trunc, noise, batch)
    _check_device(device, precision)
    prepare_outdir(outdir)
    loaded = open_model(model, device, precision)
    layer_list = None if layers is None else parse_layers(layers, loaded.G.num_ws)
    path = write_mix(
        loaded,
        row_keys,
        col_keys,
        outdir,
        layers=layer_list,
        truncation_psi=trunc,
        noise_mode=noise,
        class_idx=class_idx,
        batch_size=batch,
    )
    console.print(f"mixing grid: {path}", markup=False)


def register(app: typer.Typer) -> None:
    add_command(app, generate_command, "generate", epilog=GENERATE_EPILOG)
    add_command(app, morph_command, "morph", epilog=MORPH_EPILOG)
    add_command(app, child_command, "child", epilog=CHILD_EPILOG)
    add_command(app, mix_command, "mix", epilog=MIX_EPILOG)
