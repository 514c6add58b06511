"""`heroforge nets ...`: inspect the networks a configuration builds.

The main CLI mounts this with app.add_typer(nets_app, name="nets"); like the rest of the CLI it
only parses arguments and calls the library (heroforge.nets.summary).
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

nets_app = typer.Typer(
    help="Inspect the StyleGAN2 networks a configuration builds.",
    no_args_is_help=True,
)


@nets_app.command(
    "summary",
    epilog="Examples:\n\n"
    "  heroforge nets summary --preset superheroes-512\n\n"
    "  heroforge nets summary --preset paper512 --json\n\n"
    "  heroforge nets summary --preset tiny-cpu --set data.resolution=64 --c-dim 10",
)
def summary(
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
    from heroforge.errors import UserError
    from heroforge.nets.summary import format_summary, summarize

    if c_dim < 0:
        raise UserError(f"--c-dim {c_dim} is not allowed: 0 or more")
    result = summarize(load_config(preset, overrides or []), c_dim=c_dim)
    print(json.dumps(result) if as_json else format_summary(result))
