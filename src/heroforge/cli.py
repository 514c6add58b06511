"""The `heroforge` command. Thin on purpose: it parses arguments and calls library functions.

User mistakes (UserError) become one line on stderr and exit code 2, never a traceback.
Heavy modules are imported inside the commands so that `heroforge --help` stays instant.
"""

from __future__ import annotations

import math
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)

from heroforge.data.archive_cli import ARCHIVE_EPILOG, archive_command
from heroforge.errors import EXIT_RESUMABLE, UserError
from heroforge.generate.cli import (
    CHILD_EPILOG,
    GENERATE_EPILOG,
    MIX_EPILOG,
    MORPH_EPILOG,
    PROJECT_EPILOG,
    child_command,
    generate_command,
    mix_command,
    morph_command,
    project_command,
)
from heroforge.manager.cli import manager_app, queue_app, status_command
from heroforge.nets.cli import nets_app
from heroforge.nets.official_cli import IMPORT_OFFICIAL_EPILOG, import_official_command
from heroforge.serve.cli import SERVE_EPILOG, serve_command

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130

app = typer.Typer(
    name="heroforge",
    help="Turn a folder of stylised character pictures into a StyleGAN2-ADA model that "
    "invents new characters.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
config_app = typer.Typer(help="Inspect and check configuration presets.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(nets_app, name="nets")
app.add_typer(queue_app, name="queue")
app.add_typer(manager_app, name="manager")
app.command("status")(status_command)
console = Console(stderr=True, soft_wrap=True)  # log files keep whole lines


LOG_EVERY = 30.0  # seconds between progress lines when stderr is not an interactive terminal


class _Progress(Progress):
    """rich's bar on an interactive terminal. In logs and pipes (nohup, SLURM, systemd) a bar
    cannot redraw itself, so there is none; instead a plain line, at most every LOG_EVERY
    seconds, says how far a long step has come, and the log shows the command is alive."""

    def __init__(self, *columns: ProgressColumn, **kwargs: Any) -> None:
        super().__init__(*columns, **kwargs)
        self._logged_at = time.monotonic()

    def update(self, task_id: TaskID, **kwargs: Any) -> None:
        super().update(task_id, **kwargs)
        self._log_now_and_then(task_id)

    def advance(self, task_id: TaskID, advance: float = 1) -> None:
        super().advance(task_id, advance)
        self._log_now_and_then(task_id)

    def _log_now_and_then(self, task_id: TaskID) -> None:
        now = time.monotonic()
        if not self.disable or now - self._logged_at < LOG_EVERY:
            return
        self._logged_at = now
        task = next(t for t in self.tasks if t.id == task_id)
        line = f"{task.description}: {_count(task.completed)}"
        if task.total:
            line += f"/{_count(task.total)} ({math.floor(task.percentage)}%)"
        if task.total and task.completed:
            rest = max(0.0, task.total - task.completed)
            minutes, seconds = divmod(round((task.elapsed or 0.0) * rest / task.completed), 60)
            line += f", about {minutes}:{seconds:02d} left"
        console.print(line, markup=False, highlight=False)


def _count(value: float) -> str:
    """1234567 as it is, not 1.23457e+06."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def progress_bar() -> Progress:
    return _Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        # logs and pipes (also a forced-colour one, or TERM=dumb) get a line now and then
        disable=not console.is_interactive,
    )


@config_app.command(
    "show",
    epilog="Examples:\n\n"
    "  heroforge config show superheroes-512\n\n"
    "  heroforge config show tiny-cpu --set train.batch=16 --set augment.target=0.5\n\n"
    "  heroforge config show my-run.toml > resolved.toml",
)
def config_show(
    preset: Annotated[str, typer.Argument(help="Preset name (see `config list`) or a .toml path.")],
    overrides: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override one key: SECTION.KEY=VALUE (repeatable)."),
    ] = None,
) -> None:
    """Print the fully resolved configuration as TOML (every key, defaults filled in)."""
    from heroforge.config import load_config

    sys.stdout.write(load_config(preset, overrides or []).to_toml())


@config_app.command("list", epilog="Example:\n\n  heroforge config list")
def config_list() -> None:
    """List the built-in presets."""
    from heroforge.config import preset_names

    for name in preset_names():
        print(name)


@app.command(
    epilog="Examples:\n\n"
    "  heroforge synth --out heroes --count 500 --seed 1\n\n"
    "  heroforge synth --out small --count 50 --workers 1 --no-sheet",
)
def synth(
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


@app.command(
    epilog="Examples:\n\n"
    "  heroforge prepare scraped/ --out prepared\n\n"
    "  heroforge prepare heroes.zip --out prepared --keep both --size 256\n\n"
    "  heroforge prepare scraped/ --out prepared --set prepare.max_realism=0.5\n\n"
    "Then open prepared/review.html, add corrections to prepared/overrides.csv and rerun.",
)
def prepare(
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


app.command("archive", epilog=ARCHIVE_EPILOG)(archive_command)
app.command("import-official", epilog=IMPORT_OFFICIAL_EPILOG)(import_official_command)
app.command("generate", epilog=GENERATE_EPILOG)(generate_command)
app.command("morph", epilog=MORPH_EPILOG)(morph_command)
app.command("child", epilog=CHILD_EPILOG)(child_command)
app.command("mix", epilog=MIX_EPILOG)(mix_command)
app.command("project", epilog=PROJECT_EPILOG)(project_command)
app.command("serve", epilog=SERVE_EPILOG)(serve_command)


@app.command(
    epilog="Examples:\n\n"
    "  heroforge train --data heroes.zip --preset tiny-cpu --outdir runs --kimg 20\n\n"
    "  heroforge train --data heroes.zip --preset superheroes-512 --outdir runs --gpus 1 "
    "--set train.batch=32\n\n"
    "  torchrun --nproc_per_node 8 -m heroforge train --data heroes.zip "
    "--preset superheroes-512 --outdir runs\n\n"
    "  heroforge train --resume runs/00003-superheroes-512\n\n"
    "  heroforge train --data few.zip --init-from models/ffhq --set train.freeze_d=4\n\n"
    "Exit code 75 means: stopped on SIGTERM/SIGINT after writing a checkpoint; --resume goes on.",
)
def train(
    data: Annotated[Path | None, typer.Option(help="Training archive (.zip) or folder.")] = None,
    preset: Annotated[
        str | None, typer.Option(help="Config preset or .toml file (default: superheroes-512).")
    ] = None,
    outdir: Annotated[
        Path | None, typer.Option(help="Folder that receives the run folder (default: runs).")
    ] = None,
    kimg: Annotated[
        float | None,
        typer.Option(help="Train this many kimg in all (default: cycles x cycle_kimg)."),
    ] = None,
    cycles: Annotated[int | None, typer.Option(help="Training cycles (train.cycles).")] = None,
    cycle_kimg: Annotated[float | None, typer.Option(help="kimg per cycle.")] = None,
    gpus: Annotated[int | None, typer.Option(help="Processes/GPUs (train.gpus).")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (train.seed).")] = None,
    overrides: Annotated[
        list[str] | None, typer.Option("--set", help="Override: SECTION.KEY=VALUE (repeatable).")
    ] = None,
    resume: Annotated[
        Path | None, typer.Option(help="Continue this run folder from its last checkpoint.")
    ] = None,
    force: Annotated[
        bool, typer.Option(help="Resume even if the dataset or network config changed.")
    ] = False,
    init_from: Annotated[
        Path | None,
        typer.Option(
            help="Start from this model's weights (run folder, checkpoint or .safetensors "
            "network, e.g. from import-official) instead of random ones."
        ),
    ] = None,
) -> None:
    """Train StyleGAN2-ADA, checkpointing the full state so that any stop can be resumed.

    Every tick appends a JSON line to RUN/stats.jsonl; every checkpoint (train.checkpoint_kimg
    and train.checkpoint_minutes) holds networks, optimisers, ADA state and counters, and adds
    a fixed-seed sample grid under RUN/samples/. Each cycle end and metrics measurement gives a
    stability verdict; the run's best snapshot is the best FID among stable ones, and with
    --set stability.rollback=true an unstable run goes back to it with a larger R1 gamma and
    smaller learning rates. --init-from starts from a trained model (transfer learning);
    train.freeze_d=N keeps the first N discriminator blocks fixed.
    """
    from heroforge.config import load_config
    from heroforge.runtime.dist import shutdown_distributed
    from heroforge.train import run as runs

    def log(message: str) -> None:
        console.print(message, markup=False, highlight=False)

    if kimg is not None and not (math.isfinite(kimg) and kimg > 0):
        raise UserError(f"--kimg must be a positive number of kimg, got {kimg}")
    if resume is not None:
        given = [overrides, preset, outdir, cycles, cycle_kimg, gpus, seed, init_from]
        if any(value is not None for value in given):
            raise UserError("--resume takes the run's own config; only --data, --kimg, --force")
        train_once = lambda: runs.resume(resume, data, kimg, force, log)  # noqa: E731
    else:
        if data is None:
            raise UserError("--data is required to start a run (or use --resume RUN_DIR)")
        assignments = list(overrides or [])
        for key, value in (
            ("cycles", cycles),
            ("cycle_kimg", cycle_kimg),
            ("gpus", gpus),
            ("seed", seed),
        ):
            if value is not None:
                assignments.append(f"train.{key}={value}")
        cfg = load_config(preset or "superheroes-512", assignments)
        where = outdir or Path("runs")
        train_once = lambda: runs.start(data, cfg, where, kimg, log, init_from)  # noqa: E731
    try:
        run_dir, status = train_once()
    finally:
        shutdown_distributed()
    if status == "interrupted":
        if os.environ.get("RANK", "0") == "0":
            how = (
                " (with the same torchrun options)"
                if os.environ.get("WORLD_SIZE", "1") != "1"
                else ""
            )
            log(f"stopped; go on with: heroforge train --resume {shlex.quote(str(run_dir))}{how}")
        sys.exit(EXIT_RESUMABLE)


@app.command(epilog="Example:\n\n  heroforge demo --out demo-output")
def demo(
    out: Annotated[Path, typer.Option("--out", help="Folder for every output of the demo.")] = Path(
        "demo-output"
    ),
) -> None:
    """Run the whole product on synthetic heroes, on the CPU, and say where the outputs are."""
    from heroforge.demo import run_demo

    run_demo(out, console)


@app.command()
def version() -> None:
    """Print the heroforge version."""
    from heroforge import __version__

    print(__version__)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the console script; argv defaults to sys.argv[1:]."""
    if argv is None and sys.argv[1:2] == ["train"]:
        from heroforge.runtime.allocator import restart_with_training_allocator

        restart_with_training_allocator()  # returns only when nothing needed to change
    try:
        app(args=argv, prog_name="heroforge")
    except UserError as err:
        print(f"heroforge: error: {err}", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
    except KeyboardInterrupt:  # before or after click's own handling
        sys.exit(_interrupted(argv))
    except SystemExit as done:
        # click turns Ctrl-C into exit code 130 without a word
        sys.exit(_interrupted(argv) if done.code == EXIT_INTERRUPTED else done.code)


def _interrupted(argv: list[str] | None) -> int:
    """Say that Ctrl-C stopped the command, except where that is the usual way to end it."""
    words = [a for a in (sys.argv[1:] if argv is None else argv) if not a.startswith("-")][:2]
    if words[:1] == ["prepare"]:
        print(
            "heroforge: interrupted (every picture already analysed is kept: run the same "
            "command again to go on)",
            file=sys.stderr,
        )
    elif words[:1] != ["serve"] and words != ["queue", "logs"]:
        print("heroforge: interrupted", file=sys.stderr)
    return EXIT_INTERRUPTED


if __name__ == "__main__":
    main()
