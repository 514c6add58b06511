"""Starting and resuming training runs: the run folder, its config and the safety checks.

A run folder (its layout: rundir.py) holds config.toml (resolved; train.gpus is the count the
run trains on now), run.json (data path, dataset fingerprint, target kimg, init_from,
rollbacks, and each resume with the GPU count it used), checkpoints/, samples/ and
stats.jsonl. `--resume RUN_DIR` continues from the newest checkpoint that verifies, on the same
or another number of GPUs; a different dataset or network config is refused unless forced.
`init_from` starts from a trained model's weights (transfer.py).

A write of the run that fails (a full disk, a folder made read-only) ends it with a one-line
SaveError, exit 73 (loop.py); at the start, the run folder is then removed again, so a full
disk leaves no empty run folder behind.
"""

from __future__ import annotations

import contextlib
import re
import time
from pathlib import Path

import torch

from heroforge import __version__, rundir
from heroforge.checks import require_folder, target_kimg
from heroforge.config import Config
from heroforge.console import Log
from heroforge.data.dataset import ImageDataset
from heroforge.errors import HeroforgeError, UserError, save_failure
from heroforge.metrics.inception import check_weights
from heroforge.nets.loading import load_latest, unsigned_note
from heroforge.runtime.dist import DistInfo, barrier, from_rank0, init_distributed
from heroforge.train.loop import Trainer
from heroforge.train.precision import precision_in_use, resolve_precision
from heroforge.train.trackers import check_tracker
from heroforge.train.transfer import InitModel, load_init_model


def _open_dataset(data: str | Path, cfg: Config) -> ImageDataset:
    return ImageDataset(
        data,
        resolution=cfg.data.resolution,
        mirror=cfg.data.mirror,
        use_labels=cfg.data.use_labels,
        max_images=cfg.data.max_images,
    )


def _check_extras(cfg: Config) -> None:
    """What the run will need from optional packages, said before any work starts."""
    check_tracker(cfg.train.tracker)
    if cfg.metrics.enabled:
        check_weights(cfg.metrics.inception)


def _new_run_dir(outdir: Path, name: str) -> Path:
    """outdir/NNNNN-name with the next free number, as the official tools name runs."""
    require_folder(outdir, "--outdir", "the runs")
    outdir.mkdir(parents=True, exist_ok=True)
    numbers = [int(m.group(1)) for p in outdir.iterdir() if (m := re.match(r"^(\d{5})-", p.name))]
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "run"
    return outdir / f"{max(numbers, default=-1) + 1:05d}-{safe}"


def _create_run(outdir: Path, name: str, cfg: Config, run: dict) -> Path:
    """A new run folder holding config.toml and run.json. If they cannot be written it is
    removed again (a SaveError): a folder without run.json would only be a start that left
    nothing to resume."""
    try:
        run_dir = _new_run_dir(outdir, name)
        run_dir.mkdir()
    except OSError as err:
        raise save_failure(f"cannot create a run folder in {outdir}", err) from None
    writing = run_dir / rundir.CONFIG_TOML
    try:
        rundir.write_config(run_dir, cfg)
        writing = run_dir / rundir.RUN_JSON
        rundir.write_run_json(run_dir, run)
    except OSError as err:
        (run_dir / rundir.CONFIG_TOML).unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # left alone if anyone else put a file in it
            run_dir.rmdir()
        raise save_failure(f"cannot write {writing}", err) from None
    return run_dir


def start(
    data: str | Path,
    cfg: Config,
    outdir: str | Path,
    total_kimg: float | None = None,
    log: Log = print,
    init_from: str | Path | None = None,
) -> tuple[Path, str]:
    """Create a run folder and train; returns (run dir, "done" | "interrupted").
    init_from: a model (run folder, checkpoint or network file) whose weights the run starts
    from instead of random ones."""
    _check_extras(cfg)
    info = init_distributed()
    _check_world(cfg, info)
    dataset = _open_dataset(data, cfg)
    # every process reads the same file; checked before any folder is made
    init = None if init_from is None else load_init_model(init_from, cfg, dataset.c_dim)
    target = cfg.train.total_kimg if total_kimg is None else total_kimg
    target_kimg(target, "the training length")
    made: str | HeroforgeError | None = None  # the run folder, or why it could not be made
    if info.main:
        run = {
            "data": str(Path(data).resolve()),
            "dataset_fingerprint": dataset.fingerprint(),
            "total_kimg": target,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "heroforge_version": __version__,
            "precision": _trainer_precision(cfg, info),
        }
        if init is not None:
            run["init_from"] = init.record()
        try:
            made = str(_create_run(Path(outdir), cfg.job.name or Path(data).stem, cfg, run))
        except HeroforgeError as err:
            made = err
    made = from_rank0(made, info.world)  # every process raises rank 0's error, or none does
    if isinstance(made, HeroforgeError):
        raise made
    run_dir = Path(made)
    trainer = Trainer(cfg, dataset, run_dir, info)
    if init is not None:
        init.copy_to(trainer.networks())
        log(f"weights from {init.path}")
    log(f"run {run_dir}: {len(dataset)} images, target {target} kimg, {_precision_text(trainer)}")
    return run_dir, _train(trainer, target, log)


def resume(
    run_dir: str | Path,
    data: str | Path | None = None,
    total_kimg: float | None = None,
    force: bool = False,
    log: Log = print,
    gpus: int | None = None,
) -> tuple[Path, str]:
    """Continue a run from its newest good checkpoint (or from the start if it has none).
    gpus: the GPUs (processes) it goes on with, if not the count it last ran on; the run then
    computes the same as on that count (Config.on_gpus)."""
    run_dir = Path(run_dir)
    cfg, run = rundir.read_run(run_dir)
    if gpus is not None and gpus != cfg.train.gpus:
        log(f"{run_dir.name} ran on {cfg.train.gpus} GPUs (processes); it goes on with {gpus}")
        cfg = cfg.on_gpus(gpus)
    _check_extras(cfg)
    info = init_distributed()
    _check_world(cfg, info)
    dataset = _open_dataset(data or run["data"], cfg)
    if dataset.fingerprint() != run["dataset_fingerprint"] and not force:
        raise UserError(
            f"the dataset differs from the one {run_dir.name} was trained on "
            "(use --force to continue on it anyway)"
        )
    target = run["total_kimg"] if total_kimg is None else total_kimg
    trainer = Trainer(cfg, dataset, run_dir, info)
    checkpoints = run_dir / rundir.CHECKPOINTS
    if info.main:
        for name in rundir.remove_stale_temps(checkpoints):
            log(f"removed {name}, left by a write that was killed")
    if rundir.list_checkpoints(checkpoints):
        checkpoint, problems = load_latest(checkpoints, "cpu", set_aside=info.main)
        for problem in problems:
            log(f"skipped a damaged checkpoint: {problem}")
        if not checkpoint.loaded.sidecar_signed:
            log(unsigned_note(checkpoint.path))
        if checkpoint.loaded.cfg.network != cfg.network and not force:
            raise UserError(f"{checkpoint.path.name} was made with another network config")
        trainer.restore(checkpoint)
        kimg = trainer.progress.nimg / 1000
        log(
            f"resumed {run_dir} at {kimg:.3f} kimg from {checkpoint.path.name}, "
            f"{_precision_text(trainer)}"
        )
        if kimg >= target:
            log(f"{kimg:.3f} kimg reaches the target of {target} kimg: nothing to train "
                "(--kimg N trains on to N)")  # fmt: skip
            total_kimg = None  # a target already passed is not written as the run's
    elif "init_from" in run:  # stopped before its first checkpoint: start from the model again
        init = _init_again(run["init_from"], cfg, dataset.c_dim, force)
        init.copy_to(trainer.networks())
        log(f"no checkpoint yet: weights from {init.path} again")
    barrier()
    if info.main:
        # train.gpus is the count the run trains on now; each resume records the count it used
        trainer.writes.write(
            run_dir / rundir.CONFIG_TOML, lambda: rundir.write_config(run_dir, cfg)
        )
        resumed = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "gpus": info.world}
        resumed["kimg"] = trainer.progress.nimg / 1000
        resumed["precision"] = trainer.precision_in_use
        target_kept = {} if total_kimg is None else {"total_kimg": target}
        resumes = [*run.get("resumes", []), resumed]
        new_run = {**run, **target_kept, "resumes": resumes}
        trainer.writes.write(
            run_dir / rundir.RUN_JSON, lambda: rundir.write_run_json(run_dir, new_run)
        )
    return run_dir, _train(trainer, target, log)  # a failed write stops it after one step


def _init_again(record: dict, cfg: Config, c_dim: int, force: bool) -> InitModel:
    init = load_init_model(record["path"], cfg, c_dim)
    if init.sha256 != record.get("sha256") and not force:
        raise UserError(
            f"{init.path} changed since the run started from it (use --force to start from it)"
        )
    return init


def _train(trainer: Trainer, target: float, log: Log) -> str:
    """Train, then wait for every process: rank 0 is still writing the final checkpoint when the
    others finish, and a process that exits while a peer's gloo connection is open aborts.
    Rank 0 records how the session ended in the run folder (rundir.Ending)."""
    main = trainer.dist.main
    if main:
        ending = trainer.run_dir / rundir.ENDING
        trainer.writes.write(ending, lambda: rundir.clear_ending(trainer.run_dir))
    try:
        outcome = trainer.run(target, log)
        barrier()
    except BaseException as err:
        if main:
            what = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
            _record_ending(trainer, "crashed", log, what)
        raise
    if main:
        _record_ending(trainer, "finished" if outcome == "done" else "stopped", log)
    return outcome


def _record_ending(trainer: Trainer, how: str, log: Log, error: str | None = None) -> None:
    """Record how the session ended. One that cannot be written is a SaveError, unless the
    session already failed: then it is logged, and the session's own error goes out."""
    latest = rundir.read_marker(trainer.run_dir / rundir.CHECKPOINTS, rundir.LATEST)
    try:
        rundir.write_ending(trainer.run_dir, how, trainer.progress.nimg, latest, error)
    except OSError as err:
        if error is None:
            raise save_failure(f"cannot write {trainer.run_dir / rundir.ENDING}", err) from None
        log(f"could not record how training ended ({how}): {err}")


def _trainer_precision(cfg: Config, info: DistInfo) -> str:
    """What the Trainer of cfg will train in on this process's device (Trainer.precision_in_use)."""
    precision = resolve_precision(cfg.train.precision, info.device)
    return precision_in_use(precision, cfg.network.num_fp16_res)


def _precision_text(trainer: Trainer) -> str:
    """The precision the run trains in, and why when "auto" chose it."""
    setting, used = trainer.cfg.train.precision, trainer.precision_in_use
    return f"precision {used}" + (" (auto)" if setting == "auto" else "")


def _check_world(cfg: Config, info: DistInfo) -> None:
    if cfg.train.gpus != info.world:
        where = "GPUs" if torch.cuda.is_available() else "processes"
        raise UserError(
            f"train.gpus = {cfg.train.gpus} but {info.world} {where} are running: start with "
            f"`torchrun --nproc_per_node {cfg.train.gpus} -m heroforge train ...` or set "
            f"--gpus {info.world}"
        )
