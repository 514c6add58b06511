"""Where a run's curves and sample grids go besides stats.jsonl and samples/: TensorBoard
(RUN/tensorboard, the default), Weights & Biases or MLflow, chosen by train.tracker.

Every tracker gets the same calls from the training loop (rank 0 only): scalars at each tick
and measurement, the sample grid at each checkpoint, reopen after a rollback. The global step
is the number of real images shown, as in stats.jsonl. Weights & Biases and MLflow are
optional extras; a run that asks for one that is not installed is refused before it starts.
Both keep their own run id in RUN/tracker.json, so a resumed run continues the same tracked
run. They cannot hide what a session logged after its last checkpoint (TensorBoard can): a
resumed or rolled-back run shows those steps twice there.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import secrets
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from heroforge.errors import UserError
from heroforge.fileio import atomic_write_text
from heroforge.train.tensorboard import ScalarBoard, curves

if TYPE_CHECKING:
    from PIL import Image

    from heroforge.config import Config
    from heroforge.console import Log
    from heroforge.fileio import SaveGuard

IDS = "tracker.json"  # {"wandb": RUN_ID} or {"mlflow": RUN_ID}: the tracked run to continue
INSTALL = {
    "wandb": "pip install 'heroforge[wandb]'",
    "mlflow": "pip install 'heroforge[mlflow]'",
}
MODULES = {"wandb": "wandb", "mlflow": "mlflow"}


class Tracker(Protocol):
    def scalars(self, record: dict[str, Any], nimg: int, prefix: str = "") -> None: ...
    def image(self, tag: str, picture: Image.Image, nimg: int) -> None: ...
    def reopen(self, nimg: int) -> None: ...
    def flush(self) -> None: ...
    def close(self) -> None: ...


def check_tracker(kind: str) -> None:
    """Refuse, in one line, a tracker whose package is missing (TensorBoard is only noted)."""
    if kind in MODULES and importlib.util.find_spec(MODULES[kind]) is None:
        raise UserError(f"train.tracker = {kind!r} needs the {kind} package: {INSTALL[kind]}")


def open_tracker(
    cfg: Config, run_dir: Path, nimg: int, log: Log, writes: SaveGuard
) -> Tracker | None:
    """The run's tracker continuing at nimg images, or None (train.tracker = "none", or
    TensorBoard missing: logged). TensorBoard's writes go through the run's SaveGuard (a full
    disk stops the run in one line); W&B and MLflow keep their own files and retry uploads."""
    kind = cfg.train.tracker
    if kind == "none":
        return None
    if kind == "tensorboard":
        return ScalarBoard.open(run_dir, nimg, log, writes)
    check_tracker(kind)
    run_id = _tracked_run_id(run_dir, kind)
    if kind == "wandb":
        return WandbTracker(cfg, run_dir, run_id)
    return MlflowTracker(cfg, run_dir, run_id)


def _tracked_run_id(run_dir: Path, kind: str) -> str | None:
    try:
        ids = json.loads((run_dir / IDS).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    value = ids.get(kind) if isinstance(ids, dict) else None
    return value if isinstance(value, str) else None


def _remember_run_id(run_dir: Path, kind: str, run_id: str) -> None:
    atomic_write_text(run_dir / IDS, json.dumps({kind: run_id}) + "\n")


class WandbTracker:
    """A Weights & Biases run named after the run folder; its files live in RUN/wandb. The
    project is $WANDB_PROJECT or "heroforge"; WANDB_MODE=offline keeps everything local."""

    def __init__(self, cfg: Config, run_dir: Path, run_id: str | None) -> None:
        import wandb

        if run_id is None:
            run_id = secrets.token_hex(4)
            _remember_run_id(run_dir, "wandb", run_id)
        self.wandb = wandb
        _wait_for_a_new_second(run_dir / "wandb", run_id)
        self.run = wandb.init(
            project=wandb.env.get_project() or "heroforge",
            name=run_dir.name,
            id=run_id,
            resume="allow",
            dir=str(run_dir),
            config=cfg.to_dict(),
        )
        # images shown is the x axis of every curve (W&B's own step must only grow, and a
        # resumed run repeats the steps after its checkpoint)
        self.run.define_metric("nimg")
        self.run.define_metric("*", step_metric="nimg")

    def scalars(self, record: dict[str, Any], nimg: int, prefix: str = "") -> None:
        values = curves(record, prefix)
        if values:
            self.run.log({"nimg": nimg, **values})

    def image(self, tag: str, picture: Image.Image, nimg: int) -> None:
        self.run.log({"nimg": nimg, tag: self.wandb.Image(picture)})

    def reopen(self, nimg: int) -> None:
        """A rollback: W&B keeps the abandoned steps; the curves go on from nimg."""

    def flush(self) -> None:
        """W&B writes in its own process as it goes."""

    def close(self) -> None:
        self.run.finish()


def _wait_for_a_new_second(folder: Path, run_id: str) -> None:
    """W&B names a session's folder by its start second and the run id, so a session resumed
    within the second its predecessor started would write into that one's folder and lose
    it. Waits for the next second instead (rarely, and never more than one second)."""
    latest = 0.0
    for path in folder.glob(f"*run-*-{run_id}"):
        if match := re.search(r"(\d{8}_\d{6})-", path.name):
            latest = max(latest, time.mktime(time.strptime(match.group(1), "%Y%m%d_%H%M%S")))
    while time.time() < latest + 1:
        time.sleep(0.05)


class MlflowTracker:
    """An MLflow run named after the run folder, in the experiment $MLFLOW_EXPERIMENT_NAME or
    "heroforge", at $MLFLOW_TRACKING_URI (MLflow's default store without it)."""

    def __init__(self, cfg: Config, run_dir: Path, run_id: str | None) -> None:
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient()
        if run_id is None:
            name = os.environ.get("MLFLOW_EXPERIMENT_NAME", "heroforge")
            experiment = self.client.get_experiment_by_name(name)
            experiment_id = (
                experiment.experiment_id if experiment else self.client.create_experiment(name)
            )
            run = self.client.create_run(experiment_id, run_name=run_dir.name)
            run_id = run.info.run_id
            _remember_run_id(run_dir, "mlflow", run_id)
            from mlflow.entities import Param

            params = [
                Param(f"{section}.{key}", str(value))
                for section, values in cfg.to_dict().items()
                for key, value in values.items()
            ]
            for first in range(0, len(params), 100):  # MLflow takes 100 params per batch
                self.client.log_batch(run_id, params=params[first : first + 100])
        else:
            self.client.update_run(run_id, status="RUNNING")
        self.run_id = run_id

    def scalars(self, record: dict[str, Any], nimg: int, prefix: str = "") -> None:
        from mlflow.entities import Metric

        stamp = round(float(record.get("time", time.time())) * 1000)
        metrics = [Metric(tag, v, stamp, nimg) for tag, v in curves(record, prefix).items()]
        if metrics:
            self.client.log_batch(self.run_id, metrics=metrics)

    def image(self, tag: str, picture: Image.Image, nimg: int) -> None:
        name = f"{tag}/{nimg // 1000:06d}.{nimg % 1000:03d}kimg.png"
        self.client.log_image(self.run_id, picture, artifact_file=name)

    def reopen(self, nimg: int) -> None:
        """A rollback: MLflow keeps the abandoned steps; the curves go on from nimg."""

    def flush(self) -> None:
        """MLflow's client writes each call through."""

    def close(self) -> None:
        self.client.set_terminated(self.run_id)
