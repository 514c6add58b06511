"""`heroforge archive`: the command function; cli.py registers it with
`app.command("archive", epilog=ARCHIVE_EPILOG)(archive_command)`.

The library (heroforge.data.archive) is imported inside the command so that importing this
module, which cli.py does at start-up, keeps `heroforge --help` instant.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

ARCHIVE_EPILOG = (
    "Examples:\n\n"
    "  heroforge archive prepared --out heroes.zip\n\n"
    "  heroforge archive prepared --out heroes.zip --labels classes.json"
)


def archive_command(
    prepared_dir: Annotated[
        Path, typer.Argument(help="Folder written by `heroforge prepare` (pictures in images/).")
    ],
    out: Annotated[Path, typer.Option("--out", help="The training archive to write (.zip).")],
    labels: Annotated[
        Path | None,
        typer.Option(help='JSON file {"picture.png": class, ...}: conditional training.'),
    ] = None,
) -> None:
    """Pack prepared pictures into a training archive: a zip with dataset.json.

    The layout is the one of the official StyleGAN2-ADA dataset_tool (00000/img00000000.png,
    ...), so NVIDIA's own code can train on it too. Every picture is checked first (PNG, RGB or
    greyscale, one square power-of-two size) and stored byte for byte; heroforge.json inside
    records where each picture came from and its sha256. The archive appears only when
    complete: an interrupted run leaves the previous one untouched.
    """
    from heroforge.cli import console, progress_bar  # console: rich Console(stderr=True)
    from heroforge.data.archive import read_labels_file, write_archive

    classes = None if labels is None else read_labels_file(labels)
    with progress_bar() as bar:
        task = bar.add_task("archive", total=None)
        summary = write_archive(
            prepared_dir,
            out,
            classes,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    console.print(
        f"wrote {summary.images} pictures ({summary.resolution} px, "
        f"{summary.channels} channels, {'unlabelled' if classes is None else 'labelled'}) to "
        f"{summary.path} ({summary.bytes / 1e6:.1f} MB)"
    )
