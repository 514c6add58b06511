"""`heroforge export`: a model's generator as ONNX or TorchScript, or its networks as the
official StyleGAN2-ADA state dicts, for other tools.

The library (heroforge.nets.export, which imports torch) is imported inside the command so
that `heroforge --help` stays instant.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, cast

import typer

from heroforge.commands.base import add_command
from heroforge.console import console
from heroforge.errors import UserError

EXPORT_EPILOG = (
    "Examples:\n\n"
    "  heroforge export --model runs/00000-superheroes-512 --format onnx --out hero.onnx\n\n"
    "  heroforge export --model ffhq.pkl --format torchscript --part synthesis --out synth.pt\n\n"
    "  heroforge export --model runs/00000-superheroes-512 --format official-state-dict "
    "--out heroes-official.pt"
)


def export_command(
    model: Annotated[
        str,
        typer.Option(
            "--model",
            help="Run folder, checkpoints folder, .safetensors network file or official .pkl.",
        ),
    ],
    fmt: Annotated[str, typer.Option("--format", help="onnx, torchscript or official-state-dict.")],
    out: Annotated[Path, typer.Option("--out", help="The file to write.")],
    part: Annotated[
        str,
        typer.Option(
            "--part",
            help="onnx/torchscript: all (z, c, psi -> image), mapping (-> ws) or synthesis "
            "(ws -> image).",
        ),
    ] = "all",
) -> None:
    """Export a model for other tools.

    onnx, torchscript: the generator (G_ema, else G) with inputs z [N, z_dim], c [N, c_dim]
    (conditional models only) and the truncation psi, output images [N, C, R, R] in about
    -1..1 (pixels: x * 127.5 + 128), with the model's fixed noise: the pictures of
    `heroforge generate --noise const`.

    official-state-dict: G, D and G_ema under the official parameter names (torch.save, plain
    tensors), and OUT.json with the official constructor arguments.
    """
    from heroforge.nets.export import FORMATS, PARTS, Part, export_generator, export_official

    if fmt not in FORMATS:
        raise UserError(f"--format {fmt!r} is not one of {', '.join(FORMATS)}")
    if part not in PARTS:
        raise UserError(f"--part {part!r} is not one of {', '.join(PARTS)}")
    if fmt == "official-state-dict":
        from heroforge.nets.loading import load_model

        loaded, source, _ = load_model(model, "cpu")
        path, sidecar = export_official(loaded, out)
        console.print(f"wrote {path} and {sidecar.name} (from {source})")
        return
    from heroforge.generate.model import load_generator

    generator = load_generator(model, "cpu")
    path = export_generator(generator.G, fmt, out, cast(Part, part))
    console.print(f"wrote {path} ({fmt}, {part}; {generator.network} of {generator.source})")


def register(app: typer.Typer) -> None:
    add_command(app, export_command, "export", epilog=EXPORT_EPILOG)
