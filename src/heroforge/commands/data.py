"""`heroforge synth | prepare | archive`: from raw pictures to a training archive.

The library (heroforge.data.*) is imported inside the commands so that `heroforge --help`
stays instant.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from heroforge.commands.base import add_command
from heroforge.console import console, progress_bar
from heroforge.errors import UserError

SYNTH_EPILOG = (
    "Examples:\n\n"
    "  heroforge synth --out heroes --count 500 --seed 1\n\n"
    "  heroforge synth --out small --count 50 --workers 1 --no-sheet"
)


def synth_command(
    out: Annotated[Path, typer.Option("--out", help="Folder to write raw/, masks/, labels.json.")],
    count: Annotated[int, typer.Option(help="Number of pictures.")] = 200,
    seed: Annotated[int, typer.Option(help="Same seed, same pictures.")] = 0,
    workers: Annotated[int, typer.Option(help="Processes; 0 = one per CPU core.")] = 0,
    sheet: Annotated[bool, typer.Option(help="Also write contact_sheet.png.")] = True,
) -> None:
    """Write a messy folder of synthetic cartoon characters with exact ground truth.

    Heroes in varied poses, palettes, masks, capes and emblems, upper-body and full-body; plus
    outliers (robots, insects, animals, objects, photographic people) on plain, gradient,
    textured or cluttered backgrounds, saved as JPEG/PNG/WEBP/RGBA/palette files of any size
    with a few near-duplicates. labels.json and masks/ hold the truth for every picture.
    """
    from heroforge.data.synth import synthesize, write_contact_sheet

    with progress_bar() as bar:
        task = bar.add_task("synth", total=count)
        labels = synthesize(out, count, seed, workers, progress=lambda n: bar.advance(task, n))
    console.print(f"wrote {len(labels)} pictures to {out / 'raw'}, truth in {out / 'labels.json'}")
    if sheet:
        console.print(f"contact sheet: {write_contact_sheet(out, labels)}")


PREPARE_EPILOG = (
    "Examples:\n\n"
    "  heroforge prepare scraped/ --out prepared\n\n"
    "  heroforge prepare heroes.zip --out prepared --keep both --size 256\n\n"
    "  heroforge prepare scraped/ --out prepared --set prepare.max_realism=0.5\n\n"
    "Then open prepared/review.html, add corrections to prepared/overrides.csv and rerun."
)
# a rerun reuses every picture already analysed: Ctrl-C loses little, and the user is told so
PREPARE_INTERRUPTED = (
    "heroforge: interrupted (every picture already analysed is kept: run the same "
    "command again to go on)"
)


def prepare_command(
    raw: Annotated[Path, typer.Argument(help="Folder or .zip of raw pictures (never modified).")],
    out: Annotated[Path, typer.Option("--out", help="Folder for images/, manifest, review.")],
    size: Annotated[
        int | None, typer.Option(help="Output side in pixels (default: the preset's, 512).")
    ] = None,
    keep: Annotated[
        str | None,
        typer.Option(help="Body extent to keep: upper, full or both (default: the preset's)."),
    ] = None,
    preset: Annotated[
        str, typer.Option(help="Config preset whose prepare settings are used.")
    ] = "superheroes-512",
    overrides: Annotated[
        list[str] | None, typer.Option("--set", help="Override: prepare.KEY=VALUE (repeatable).")
    ] = None,
    workers: Annotated[int, typer.Option(help="Processes; 0 = one per CPU core.")] = 0,
) -> None:
    """Turn raw character pictures into a reviewed set of square PNGs on white.

    Drops outliers with a recorded reason (too_realistic, not_separable, not_human, too_small,
    duplicate), splits upper-body from full-body, removes the background and frames each kept
    subject on a white square. Writes images/, manifest.jsonl, review.html and overrides.csv;
    a rerun honours overrides.csv and reuses every picture already analysed.
    """
    from heroforge.config import load_config
    from heroforge.data.prepare import prepare as run_prepare

    assignments = list(overrides or [])
    for assignment in assignments:
        if not assignment.startswith("prepare."):
            raise UserError(f"prepare takes only prepare.KEY=VALUE settings, got {assignment!r}")
    if size is not None:
        assignments.append(f"prepare.size={size}")
    if keep is not None:
        assignments.append(f"prepare.keep={keep}")
    cfg = load_config(preset, assignments).prepare
    with progress_bar() as bar:
        task = bar.add_task("prepare", total=None)

        def advance(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        summary = run_prepare(raw, out, cfg, workers, progress=advance)
    reasons = ", ".join(f"{k} {v}" for k, v in sorted(summary.excluded.items())) or "none"
    errors = ", ".join(f"{k} {v}" for k, v in sorted(summary.errors.items())) or "none"
    console.print(f"{summary.inputs} inputs: kept {summary.kept}; excluded: {reasons}")
    console.print(f"skipped files: {errors}")
    if unknown := summary.unknown_overrides:
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        console.print(
            f"overrides.csv names {len(unknown)} pictures that are not in the input: "
            f"{', '.join(unknown[:5])}{more}",
            markup=False,
        )
    console.print(f"review: {out / 'review.html'}  corrections: {out / 'overrides.csv'}")


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


def register(app: typer.Typer) -> None:
    add_command(app, synth_command, "synth", epilog=SYNTH_EPILOG)
    add_command(
        app, prepare_command, "prepare", epilog=PREPARE_EPILOG, on_interrupt=PREPARE_INTERRUPTED
    )
    add_command(app, archive_command, "archive", epilog=ARCHIVE_EPILOG)
