"""`heroforge demo` and `heroforge version`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from heroforge.commands.base import add_command
from heroforge.console import console

DEMO_EPILOG = "Example:\n\n  heroforge demo --out demo-output"


def demo_command(
    out: Annotated[Path, typer.Option("--out", help="Folder for every output of the demo.")] = Path(
        "demo-output"
    ),
) -> None:
    """Run the whole product on synthetic heroes, on the CPU, and say where the outputs are."""
    from heroforge.demo import run_demo

    run_demo(out, console)


def version_command() -> None:
    """Print the heroforge version."""
    from heroforge import __version__

    print(__version__)


def register(app: typer.Typer) -> None:
    add_command(app, demo_command, "demo", epilog=DEMO_EPILOG)
    add_command(app, version_command, "version")
