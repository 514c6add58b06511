"""Starting and resuming training runs: the run folder, its config and the safety checks.

A run folder (its layout: rundir.py) holds config.toml (resolved; train.gpus is the count the
run trains on now), run.json (data path, dataset fingerprint, target kimg, init_from,
rollbacks, and each resume with the GPU count it used), checkpoints/, samples/ and
stats.jsonl. `--resume RUN_DIR` continues from the newest checkpoint that verifies, on the same
or another number of GPUs; a different dataset or network config is refused unless forced.
`init_from` starts from a trained model's weights (transfer.py).
"""

from __future__ import annotations

import math
import re
import time
from pathlib import Path

import torch

from heroforge import __version__, rundir
from heroforge.checks import require_folder
from heroforge.config import Config
from heroforge.console import Log
from heroforge.data.dataset import ImageDataset
from heroforge.errors import UserError
from heroforge.metrics.inception import check_weights
from heroforge.nets.loading import load_latest
from heroforge.runtime.dist import DistInfo, barrier, from_rank0, init_distributed
from heroforge.train.loop import Trainer
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
    if not (math.isfinite(target) and target > 0):
        raise UserError(f"the training length must be a positive number of kimg, got {target}")
    run_dir = None
    if info.main:
        name = cfg.job.name or Path(data).stem
        run_dir = _new_run_dir(Path(outdir), name)
        run_dir.mkdir()
        rundir.write_config(run_dir, cfg)
        run = {
            "data": str(Path(data).resolve()),
            "dataset_fingerprint": dataset.fingerprint(),
            "total_kimg": target,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "heroforge_version": __version__,
        }
        if init is not None:
            run["init_from"] = init.record()
        rundir.write_run_json(run_dir, run)
    run_dir = Path(from_rank0(str(run_dir) if run_dir else None, info.world))
    trainer = Trainer(cfg, dataset, run_dir, info)
    if init is not None:
        init.copy_to(trainer.networks())
        log(f"weights from {init.path}")
    log(f"run {run_dir}: {len(dataset)} images, target {target} kimg")
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
    if rundir.list_checkpoints(checkpoints):
        checkpoint, problems = load_latest(checkpoints, "cpu")
        for problem in problems:
            log(f"skipped a damaged checkpoint: {problem}")
        if checkpoint.loaded.cfg.network != cfg.network and not force:
            raise UserError(f"{checkpoint.path.name} was made with another network config")
        trainer.restore(checkpoint)
        kimg = trainer.progress.nimg / 1000
        log(f"resumed {run_dir} at {kimg:.3f} kimg from {checkpoint.path.name}")
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
        rundir.write_config(run_dir, cfg)
        resumed = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "gpus": info.world}
        resumed["kimg"] = trainer.progress.nimg / 1000
        target_kept = {} if total_kimg is None else {"total_kimg": target}
        resumes = [*run.get("resumes", []), resumed]
        rundir.write_run_json(run_dir, {**run, **target_kept, "resumes": resumes})
    return run_dir, _train(trainer, target, log)


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
        rundir.clear_ending(trainer.run_dir)
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
    """Best effort: a record that cannot be written must not hide the run's own outcome."""
    latest = rundir.read_marker(trainer.run_dir / rundir.CHECKPOINTS, rundir.LATEST)
    try:
        rundir.write_ending(trainer.run_dir, how, trainer.progress.nimg, latest, error)
    except OSError as err:
        log(f"could not record how training ended ({how}): {err}")


def _check_world(cfg: Config, info: DistInfo) -> None:
    if cfg.train.gpus != info.world:
        where = "GPUs" if torch.cuda.is_available() else "processes"
        raise UserError(
            f"train.gpus = {cfg.train.gpus} but {info.world} {where} are running: start with "
            f"`torchrun --nproc_per_node {cfg.train.gpus} -m heroforge train ...` or set "
            f"--gpus {info.world}"
        )
