"""TensorBoard scalars: steps are images shown, each step once even after a resume; without
the optional package, one log line and no files."""

import sys

import pytest

from helpers.training import quiet
from heroforge.config import load_config
from heroforge.fileio import SaveGuard
from heroforge.train.run import start
from heroforge.train.tensorboard import ScalarBoard


def _scalars(folder) -> dict[str, list[tuple[int, float]]]:
    accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    events = accumulator.EventAccumulator(str(folder))
    events.Reload()
    return {
        tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]
    }


def test_a_reopened_board_hides_the_steps_after_the_checkpoint(tmp_path, monkeypatch):
    pytest.importorskip("tensorboard")
    from tensorboard.summary.writer import event_file_writer

    # file names end with a per-process counter: 9 then 10, which sort the wrong way round
    # when both files are made in the same second
    monkeypatch.setattr(event_file_writer, "_global_uid", event_file_writer.AtomicCounter(9))
    board = ScalarBoard.open(tmp_path, 0, print, SaveGuard())
    for nimg in (32, 64, 96):
        board.scalars({"tick": 1, "kimg": nimg / 1000, "loss/G": nimg / 1000, "rt": 0.5}, nimg)
    board.close()
    board = ScalarBoard.open(
        tmp_path, 64, print, SaveGuard()
    )  # resumed from the checkpoint at 64 images
    for nimg in (96, 128):
        board.scalars({"loss/G": 1 + nimg / 1000}, nimg)
    board.scalars({"fid": 12.5}, 128, prefix="metrics")
    board.close()
    scalars = _scalars(tmp_path / "tensorboard")
    assert [s for s, _ in scalars["loss/G"]] == [32, 64, 96, 128]
    assert scalars["loss/G"][2][1] == pytest.approx(1.096)  # the second session's value
    assert scalars["progress/rt"] == [(32, 0.5), (64, 0.5)]
    assert scalars["metrics/fid"] == [(128, 12.5)]
    assert "progress/tick" not in scalars
    assert "progress/kimg" not in scalars


def test_without_tensorboard_one_line_and_nothing_written(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails
    messages: list[str] = []
    assert ScalarBoard.open(tmp_path, 0, messages.append, SaveGuard()) is None
    assert messages == ["TensorBoard scalars are off: `pip install tensorboard` turns them on"]
    assert not (tmp_path / "tensorboard").exists()


@pytest.mark.slow
def test_training_writes_tick_scalars(tiny_archive, tmp_path):
    pytest.importorskip("tensorboard")
    cfg = load_config("tiny-cpu", ["train.tick_kimg=0.032", "train.checkpoint_kimg=0.032"])
    run_dir, _ = start(tiny_archive, cfg, tmp_path, total_kimg=0.064, log=quiet)
    scalars = _scalars(run_dir / "tensorboard")
    assert [s for s, _ in scalars["loss/D_fake"]] == [32, 64]
    assert {"loss/G", "progress/augment_p", "progress/sec_per_kimg"} <= scalars.keys()
    assert [s for s, _ in scalars["stability/unstable"]] == [64]
