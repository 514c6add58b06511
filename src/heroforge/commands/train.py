"""`heroforge train`: one training run, started afresh or resumed.

The library (heroforge.train, which imports torch) is imported inside the command so that
`heroforge --help` stays instant.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from heroforge.commands import official
from heroforge.commands.base import add_command
from heroforge.console import console
from heroforge.errors import EXIT_RESUMABLE, UserError

if TYPE_CHECKING:
    from heroforge.config import Config

TRAIN_EPILOG = (
    "Examples:\n\n"
    "  heroforge train --data heroes.zip --preset tiny-cpu --outdir runs --kimg 20\n\n"
    "  heroforge train --data heroes.zip --preset superheroes-512 --outdir runs --gpus 1 "
    "--set train.batch=32\n\n"
    "  heroforge train --data heroes.zip --preset superheroes-512 --outdir runs --gpus 8\n\n"
    "  heroforge train --resume runs/00003-superheroes-512\n\n"
    "  heroforge train --data few.zip --init-from models/ffhq --set train.freeze_d=4\n\n"
    "Several machines: torchrun --nnodes 2 --nproc_per_node 8 --rdzv_backend c10d "
    "--rdzv_endpoint HOST:29500 --shutdown-timeout 3600 --signals-to-handle "
    "SIGTERM,SIGINT,SIGUSR1 -m heroforge train ... (or srun with one task per GPU). torchrun "
    "SIGKILLs its workers 30 s after a stop signal unless --shutdown-timeout (or "
    "TORCH_ELASTIC_SHUTDOWN_TIMEOUT) gives the checkpoint more time; heroforge cannot set it "
    "for torchrun, and older torch has no such setting. --gpus N on one machine starts its N "
    "processes itself and waits for their checkpoint as long as it takes.\n\n"
    "Exit code 75 means: stopped on SIGTERM/SIGINT/SIGUSR1 after writing a checkpoint; "
    "--resume goes on."
)


def _official(help_text: str, metavar: str | None = None) -> typer.models.OptionInfo:
    """An option named as in the official train.py, listed under its own heading."""
    return typer.Option(help=help_text, metavar=metavar, rich_help_panel=official.OFFICIAL_PANEL)


def train_command(
    data: Annotated[Path | None, typer.Option(help="Training archive (.zip) or folder.")] = None,
    preset: Annotated[
        str | None,
        typer.Option(
            "--preset",
            "--cfg",
            help="Config preset or .toml file (default: superheroes-512; --cfg auto = that).",
        ),
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
    gpus: Annotated[
        int | None,
        typer.Option(help="GPUs (processes on a CPU) (train.gpus); above 1 starts a process each."),
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (train.seed).")] = None,
    overrides: Annotated[
        list[str] | None, typer.Option("--set", help="Override: SECTION.KEY=VALUE (repeatable).")
    ] = None,
    resume: Annotated[
        Path | None,
        typer.Option(
            help="Continue this run folder from its last checkpoint (the official --resume "
            "PKL is --init-from here)."
        ),
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
    gamma: Annotated[float | None, _official("R1 gamma (train.r1_gamma).")] = None,
    mirror: Annotated[str | None, _official("x-flips, 1 or 0 (data.mirror).", "BOOL")] = None,
    cond: Annotated[
        str | None, _official("Class labels, 1 or 0 (data.use_labels).", "BOOL")
    ] = None,
    subset: Annotated[int | None, _official("Only N images (data.max_images).")] = None,
    batch: Annotated[int | None, _official("Global minibatch (train.batch).")] = None,
    aug: Annotated[str | None, _official("ada, fixed or noaug (augment.mode).")] = None,
    p: Annotated[float | None, _official("Augmentation p (augment.p).")] = None,
    target: Annotated[float | None, _official("ADA target (augment.target).")] = None,
    augpipe: Annotated[str | None, _official("Augmentation pipeline (augment.pipe).")] = None,
    snap: Annotated[
        int | None, _official("Checkpoint and metrics every N ticks (train.checkpoint_kimg).")
    ] = None,
    freezed: Annotated[int | None, _official("Freeze-D blocks (train.freeze_d).")] = None,
    fp32: Annotated[str | None, _official("1 = train.precision=fp32.", "BOOL")] = None,
    workers: Annotated[int | None, _official("Loader processes (data.workers).")] = None,
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
    from heroforge import rundir
    from heroforge.checks import target_kimg
    from heroforge.config import load_config
    from heroforge.runtime import launch

    official_sets = official.train_overrides(
        gamma=gamma, mirror=mirror, cond=cond, subset=subset, batch=batch, aug=aug, p=p,
        target=target, augpipe=augpipe, freezed=freezed, fp32=fp32, workers=workers,
    )  # fmt: skip
    if official_sets or snap is not None:
        overrides = official_sets + list(overrides or [])
    if kimg is not None:
        target_kimg(kimg)
    if resume is not None:
        official.check_resume(resume)
        given = [overrides, preset, outdir, cycles, cycle_kimg, seed, init_from]
        if any(value is not None for value in given):
            raise UserError(
                "--resume takes the run's own config; only --data, --kimg, --gpus, --force"
            )
        cfg, _ = rundir.read_run(resume)
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
        preset = None if preset == "auto" else preset  # the default is the "auto" config
        cfg = load_config(preset or "superheroes-512", assignments)
        if snap is not None:
            snap_sets = official.snap_overrides(snap, cfg.train.tick_kimg)
            overrides = (overrides or []) + snap_sets
            cfg = load_config(preset or "superheroes-512", assignments + snap_sets)
    nprocs = cfg.train.gpus if gpus is None else gpus
    if nprocs > 1 and not launch.already_launched(os.environ):
        # what every worker would refuse alike is said once, before N processes start
        if resume is not None and gpus is not None:
            cfg.on_gpus(gpus)
        for flag, path in (("--data", data), ("--init-from", init_from)):
            if path is not None and not path.exists():
                raise UserError(f"{flag} {path} does not exist")
        options = {"--data": data, "--preset": preset, "--outdir": outdir, "--kimg": kimg,
                   "--cycles": cycles, "--cycle-kimg": cycle_kimg, "--gpus": gpus, "--seed": seed,
                   "--resume": resume, "--init-from": init_from}  # fmt: skip
        worker = [sys.executable, "-m", "heroforge", "train"]
        worker += [word for flag, v in options.items() if v is not None for word in (flag, str(v))]
        worker += [word for o in overrides or [] for word in ("--set", o)]
        _launch(worker + (["--force"] if force else []), nprocs)
        return
    _train_here(cfg, data, outdir, kimg, resume, force, init_from, gpus)


def _launch(worker: list[str], nprocs: int) -> None:
    """Run `worker` as nprocs processes; exit as they did (75: stopped with a checkpoint)."""
    from heroforge.runtime.launch import run_workers

    result = run_workers(worker, nprocs)
    if result.failure:
        print(f"heroforge: error: {result.failure}", file=sys.stderr)
        for line in result.details:
            print(line, file=sys.stderr)
    if result.code:
        sys.exit(result.code)


def _train_here(
    cfg: Config,
    data: Path | None,
    outdir: Path | None,
    kimg: float | None,
    resume: Path | None,
    force: bool,
    init_from: Path | None,
    gpus: int | None,
) -> None:
    """Train in this process (alone, or as one of several that a launcher started)."""
    from heroforge.runtime.dist import shutdown_distributed
    from heroforge.runtime.launch import resume_hint
    from heroforge.train import run as runs

    def log(message: str) -> None:
        console.print(message, markup=False, highlight=False)

    try:
        if resume is not None:
            run_dir, status = runs.resume(resume, data, kimg, force, log, gpus)
        else:
            assert data is not None  # checked by the command
            where = outdir or Path("runs")
            run_dir, status = runs.start(data, cfg, where, kimg, log, init_from)
    finally:
        shutdown_distributed()
    if status == "interrupted":
        if os.environ.get("RANK", "0") == "0":
            how = resume_hint(os.environ)
            log(f"stopped; go on with: heroforge train --resume {shlex.quote(str(run_dir))}{how}")
        sys.exit(EXIT_RESUMABLE)


def register(app: typer.Typer) -> None:
    add_command(app, train_command, "train", epilog=TRAIN_EPILOG)
