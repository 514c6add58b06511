"""`heroforge export` and `heroforge metrics`: a finished model for other tools (ONNX,
TorchScript, the official state dicts) and measured on its own (the official metric names).

The libraries (heroforge.nets.export, heroforge.metrics.official: torch) are imported inside
the commands so that `heroforge --help` stays instant.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, cast

import typer

from heroforge.commands.base import add_command
from heroforge.console import console
from heroforge.errors import UserError, write_failure
from heroforge.fileio import atomic_write_text

EXPORT_EPILOG = (
    "Examples:\n\n"
    "  heroforge export --model runs/00000-superheroes-512 --format onnx --out hero.onnx\n\n"
    "  heroforge export --model ffhq.pkl --format torchscript --part synthesis --out synth.pt\n\n"
    "  heroforge export --model runs/00000-superheroes-512 --format official-state-dict "
    "--out heroes-official.pt"
)


# the model both commands measure or convert (nets/loading.load_model reads every form)
Model = Annotated[
    str,
    typer.Option(
        "--model",
        help="Run folder, checkpoints folder, .safetensors network file or official .pkl.",
    ),
]


def export_command(
    model: Model,
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


METRICS_EPILOG = (
    "Examples:\n\n"
    "  heroforge metrics --model runs/00000-superheroes-512 --data heroes.zip\n\n"
    "  heroforge metrics --model ffhq.pkl --data ffhq.zip --metrics fid50k_full,kid50k_full,"
    "pr50k3_full --out metrics.jsonl"
)


def metrics_command(
    model: Model,
    data: Annotated[Path, typer.Option("--data", help="The training archive (.zip) or folder.")],
    metrics: Annotated[
        str,
        typer.Option("--metrics", help="Comma-separated: fid50k_full, kid50k_full, pr50k3_full."),
    ] = "fid50k_full",
    num: Annotated[
        int, typer.Option("--num", help="Generated images (the official 50000; fewer: quicker).")
    ] = 50_000,
    out: Annotated[
        Path | None, typer.Option("--out", help="Also append the JSON lines to this file.")
    ] = None,
    inception: Annotated[
        str,
        typer.Option(
            "--inception", help="InceptionV3 TorchScript weights (default: the pip ones)."
        ),
    ] = "",
    device: Annotated[
        str | None,
        typer.Option("--device", help="cpu, cuda, cuda:1, ... (default: cuda if there is one)"),
    ] = None,
) -> None:
    """Compute the official StyleGAN2-ADA metrics of a model (the official calc_metrics.py).

    Prints one JSON line per metric, shaped like the official metric-NAME.jsonl records
    (results, metric, total_time, total_time_str, num_gpus, snapshot_pkl, timestamp). Real
    features are cached per dataset, so a second model measured on the same data only
    generates.
    """
    from heroforge.data.dataset import ImageDataset
    from heroforge.generate.model import load_generator
    from heroforge.metrics.inception import InceptionFeatures
    from heroforge.metrics.official import calc_metrics, parse_metrics

    names = parse_metrics(metrics)
    generator = load_generator(model, device)
    dataset = ImageDataset(data, resolution=generator.G.img_resolution)
    features = InceptionFeatures(inception or None, generator.device)
    records = calc_metrics(generator.G, dataset, names, str(generator.source), num, features,
                           generator.device)  # fmt: skip
    lines = "".join(json.dumps(record) + "\n" for record in records)
    print(lines, end="")
    if out is not None:
        try:
            old = out.read_text(encoding="utf-8") if out.is_file() else ""
            atomic_write_text(out, old + lines)
        except OSError as err:
            raise write_failure(f"cannot write {out}", err) from None


def register(app: typer.Typer) -> None:
    add_command(app, export_command, "export", epilog=EXPORT_EPILOG)
    add_command(app, metrics_command, "metrics", epilog=METRICS_EPILOG)
