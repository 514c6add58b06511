"""Every write of a run, not only checkpoints, fails the same way: one line naming the file, exit
73, no traceback (TensorBoard's writer thread included); a full disk at the start leaves no
empty run folder (issue 26, point 2). On real files: a small tmpfs, filled up."""

import errno

import pytest

from helpers.disks import fill, save_error_line, small_disk
from helpers.training import only_run, tick_kimgs
from heroforge import rundir
from heroforge.errors import SaveError, save_failure
from heroforge.fileio import SaveGuard
from heroforge.nets.loading import load_latest
from heroforge.train.loop import Trainer
from heroforge.train.tensorboard import ScalarBoard


def test_a_full_disk_at_the_start_leaves_no_run_folder(cli, tiny_archive, tmp_path):
    with small_disk(tmp_path / "disk", 1) as disk:
        (disk / "runs").mkdir()
        fill(disk)
        code, _, err = cli("train", "--data", str(tiny_archive), "--preset", "tiny-cpu",
                           "--outdir", str(disk / "runs"), "--kimg", "0.02")  # fmt: skip
        line = save_error_line(code, err)
        config = disk / "runs" / "00000-tiny-cpu" / rundir.CONFIG_TOML
        assert line == f"cannot write {config}: No space left on device"
        assert list((disk / "runs").iterdir()) == []


@pytest.mark.slow
def test_a_disk_that_fills_between_checkpoints_stops_the_run_in_one_line(
    cli, tiny_archive, tmp_path, monkeypatch
):
    with small_disk(tmp_path / "disk", 12) as disk:
        checkpoint = Trainer._checkpoint

        def checkpoint_then_fill(self, log):
            checkpoint(self, log)
            if not (disk / "filler").exists():
                fill(disk)  # someone else's files take the rest of the disk

        monkeypatch.setattr(Trainer, "_checkpoint", checkpoint_then_fill)
        # a tick at every step (4 images): stats.jsonl and TensorBoard grow between checkpoints
        settings = ["train.tick_kimg=0.004", "train.checkpoint_kimg=0.02"]
        code, _, err = cli("train", "--data", str(tiny_archive), "--preset", "tiny-cpu",
                           "--outdir", str(disk / "runs"), "--kimg", "0.2",
                           *(w for s in settings for w in ("--set", s)))  # fmt: skip
        line = save_error_line(code, err)  # and no traceback from the TensorBoard writer
        run_dir = only_run(disk / "runs")
        assert line.startswith(f"cannot write {run_dir}/"), line
        assert ": No space left on device; training stopped and goes on from ckpt-" in line
        # stopped at the first write that failed: a tick's line, TensorBoard, or (when the
        # files' last tmpfs pages still had room for a few lines) the checkpoint at 0.04
        assert max(tick_kimgs(run_dir)) < 0.06
        latest, problems = load_latest(run_dir / rundir.CHECKPOINTS)
        assert problems == []
        assert latest.path.name == "ckpt-000000000020.safetensors"


def test_tensorboard_on_a_full_disk_is_one_kept_error_without_a_thread_traceback(tmp_path, capfd):
    pytest.importorskip("tensorboard")
    with small_disk(tmp_path / "disk", 1) as disk:
        writes = SaveGuard()
        board = ScalarBoard.open(disk, 0, print, writes)
        assert board is not None
        fill(disk)
        for nimg in range(0, 40000, 4):  # until the writer's buffers reach the disk
            board.scalars({"loss/G": 0.5, "loss/D": 1.5}, nimg)
            if writes.failure:
                break
        board.flush()
        board.close()
        assert isinstance(writes.failure, SaveError)
        assert str(writes.failure) == (
            f"cannot write {disk / rundir.TENSORBOARD}: No space left on device"
        )
        assert "Traceback" not in capfd.readouterr().err


@pytest.mark.parametrize(
    ("code", "cause"),
    [(errno.EACCES, "Permission denied"), (errno.EPERM, "Operation not permitted"),
     (errno.EROFS, "Read-only file system")],
)  # fmt: skip
def test_a_folder_nobody_may_write_loses_the_work_too(code, cause):
    """Not exit 2 ("your input"): the run folder is heroforge's own, and the work is lost just
    as on a full disk; the line says why it is not a full disk."""
    err = save_failure("cannot write RUN/checkpoints/x", OSError(code, cause))
    assert err.exit_code == 73
    assert str(err) == (
        f"cannot write RUN/checkpoints/x: {cause} (not writable: the work cannot be saved there)"
    )


def test_the_first_failed_write_is_kept_and_the_later_ones_go_on():
    writes = SaveGuard()
    assert writes.write("a", lambda: 1) == 1
    assert writes.failure is None

    def no_space() -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    def read_only() -> None:
        raise OSError(errno.EROFS, "Read-only file system")

    assert writes.write("b", no_space) is None
    assert writes.write("c", read_only) is None
    assert writes.write("d", lambda: 4) == 4
    assert str(writes.failure) == "cannot write b: No space left on device"
