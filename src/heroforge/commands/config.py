"""`heroforge config show | list`: the configuration presets."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from heroforge.commands.base import add_command

SHOW_EPILOG = (
    "Examples:\n\n"
    "  heroforge config show superheroes-512\n\n"
    "  heroforge config show tiny-cpu --set train.batch=16 --set augment.target=0.5\n\n"
    "  heroforge config show my-run.toml > resolved.toml"
)


def show_command(
    preset: Annotated[str, typer.Argument(help="Preset name (see `config list`) or a .toml path.")],
    overrides: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override one key: SECTION.KEY=VALUE (repeatable)."),
    ] = None,
) -> None:
    """Print the fully resolved configuration as TOML (every key, defaults filled in)."""
    from heroforge.config import load_config

    sys.stdout.write(load_config(preset, overrides or []).to_toml())


LIST_EPILOG = "Example:\n\n  heroforge config list"


def list_command() -> None:
    """List the built-in presets."""
    from heroforge.config import preset_names

    for name in preset_names():
        print(name)


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="Inspect and check configuration presets.", no_args_is_help=True)
    add_command(group, show_command, "show", epilog=SHOW_EPILOG)
    add_command(group, list_command, "list", epilog=LIST_EPILOG)
    app.add_typer(group, name="config")
