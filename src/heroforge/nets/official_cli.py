"""`heroforge import-official`: the command function; cli.py registers it with
`app.command("import-official", epilog=IMPORT_OFFICIAL_EPILOG)(import_official_command)`.

The library (heroforge.nets.official, which imports torch) is imported inside the command so
that importing this module, which cli.py does at start-up, keeps `heroforge --help` instant.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

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
    from heroforge.cli import console  # console: rich Console(stderr=True)
    from heroforge.nets.official import import_official

    summary = import_official(pkl, out)
    labels = f"{summary.c_dim} classes" if summary.c_dim else "unconditional"
    colour = "RGB" if summary.channels == 3 else "greyscale"
    console.print(
        f"imported G, D and G_ema ({summary.resolution} px, {colour}, {labels}) to {summary.path}"
    )
