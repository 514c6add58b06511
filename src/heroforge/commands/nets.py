"""`heroforge import-official` and `heroforge nets summary`: networks from elsewhere, and
what a configuration builds.

The library (heroforge.nets.*, which imports torch) is imported inside the commands so that
`heroforge --help` stays instant.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from heroforge.commands.base import add_command
from heroforge.console import console
from heroforge.errors import UserError

IMPORT_OFFICIAL_EPILOG = (
    "Examples:\n\n"
    "  heroforge import-official network-snapshot-025000.pkl --out models/heroes\n\n"
    "  heroforge import-official ffhq.pkl --out models/ffhq"
)


def import_official_command(
    pkl: Annotated[
        Path, typer.Argument(help="A network pickle written by NVIDIA's stylegan2-ada-pytorch.")
    ],
    out: Annotated[
        Path, typer.Option("--out", help="Folder to write model.safetensors and model.json to.")
    ],
) -> None:
    """Import an official StyleGAN2-ADA network pickle (G, D and G_ema) as heroforge networks.

    Nothing in the pickle is run: it is read with an unpickler that knows only plain data
    (tensors, numbers, the networks' constructor arguments), never the Python source the
    official pickles carry. A file that asks for anything else is refused whole. The networks
    are rebuilt from their constructor arguments and every tensor's name and shape is checked
    before it is loaded.
    """
    from heroforge.nets.official import import_official

    summary = import_official(pkl, out)
    labels = f"{summary.c_dim} classes" if summary.c_dim else "unconditional"
    colour = "RGB" if summary.channels == 3 else "greyscale"
    console.print(
        f"imported G, D and G_ema ({summary.resolution} px, {colour}, {labels}) to {summary.path}"
    )


SUMMARY_EPILOG = (
    "Examples:\n\n"
    "  heroforge nets summary --preset superheroes-512\n\n"
    "  heroforge nets summary --preset paper512 --json\n\n"
    "  heroforge nets summary --preset tiny-cpu --set data.resolution=64 --c-dim 10"
)


def summary_command(
    preset: Annotated[
        str, typer.Option("--preset", help="Preset name (see `config list`) or a .toml path.")
    ] = "superheroes-512",
    overrides: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override one key: SECTION.KEY=VALUE (repeatable)."),
    ] = None,
    c_dim: Annotated[int, typer.Option("--c-dim", help="Label size; 0 = unconditional.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Print the parameters of G and D per block, with forward FLOPs per image.

    Parameters: trainable ones only (not w_avg, not the constant noise).

    FLOPs: one image's forward pass, a multiply-add counted as two.
    """
    from heroforge.config import load_config
    from heroforge.nets.summary import format_summary, summarize

    if c_dim < 0:
        raise UserError(f"--c-dim {c_dim} is not allowed: 0 or more")
    result = summarize(load_config(preset, overrides or []), c_dim=c_dim)
    print(json.dumps(result) if as_json else format_summary(result))


def register(app: typer.Typer) -> None:
    add_command(app, import_official_command, "import-official", epilog=IMPORT_OFFICIAL_EPILOG)
    group = typer.Typer(
        help="Inspect the StyleGAN2 networks a configuration builds.",
        no_args_is_help=True,
    )
    add_command(group, summary_command, "summary", epilog=SUMMARY_EPILOG)
    app.add_typer(group, name="nets")
