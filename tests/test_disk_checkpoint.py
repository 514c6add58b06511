"""A checkpoint that cannot be written stops training at once: one line naming the file and the
cause, exit 73, the last good checkpoint untouched and nothing half-written left beside it
(issue 26, point 1). On real files: a small tmpfs that fills up, a folder made immutable."""

import subprocess

import pytest
import torch.multiprocessing as mp

from helpers.disks import immutable, save_error_line, small_disk
from helpers.training import become_rank, free_port, only_run, quiet, spawn_two, tick_kimgs
from heroforge import rundir
from heroforge.config import load_config
from heroforge.nets.loading import load_latest

# A tick and a checkpoint every 5 steps of 4 images; no checkpoint is pruned.
QUICK = ["train.tick_kimg=0.02", "train.checkpoint_kimg=0.02", "train.keep_checkpoints=20"]
SETS = [word for setting in QUICK for word in ("--set", setting)]
DISK_MB = 12  # room for one tiny-cpu checkpoint (7.5 MB) and the run's small files, not two


def checkpoint_files(run_dir) -> list[str]:
    return sorted(p.name for p in (run_dir / rundir.CHECKPOINTS).iterdir())


FIRST = ["ckpt-000000000020.json", "ckpt-000000000020.safetensors", "latest.json"]


@pytest.mark.slow
def test_a_full_disk_stops_the_run_at_its_first_unwritable_checkpoint(cli, tiny_archive, tmp_path):
    with small_disk(tmp_path / "disk", DISK_MB) as disk:
        code, _, err = cli("train", "--data", str(tiny_archive), "--preset", "tiny-cpu",
                           "--outdir", str(disk / "runs"), "--kimg", "0.2", *SETS)  # fmt: skip
        line = save_error_line(code, err)
        run_dir = only_run(disk / "runs")
        failed = run_dir / rundir.CHECKPOINTS / "ckpt-000000000040.safetensors"
        assert line.startswith(f"cannot write {failed}: No space left on device; "), line
        assert "goes on from ckpt-000000000020.safetensors (0.020 kimg)" in line
        assert f"heroforge train --resume {run_dir}" in line
        assert tick_kimgs(run_dir) == [0.02, 0.04]  # not on to 0.2 kimg with nowhere to save
        assert checkpoint_files(run_dir) == FIRST  # no temp file, no tensors without sidecar
        checkpoint, problems = load_latest(run_dir / rundir.CHECKPOINTS)
        assert problems == []
        assert checkpoint.path.name == "ckpt-000000000020.safetensors"

        # with room again, the command the line gives goes on from there
        subprocess.run(["mount", "-o", f"remount,size={3 * DISK_MB}m", str(disk)], check=True)
        code, _, err = cli("train", "--resume", str(run_dir), "--kimg", "0.06")
        assert code == 0, err
        assert "resumed" in err
        assert "at 0.020 kimg" in err
        assert tick_kimgs(run_dir) == [0.02, 0.04, 0.06]


@pytest.mark.slow
def test_a_checkpoints_folder_nobody_may_write_is_73_too(cli, tiny_archive, tmp_path):
    """chattr +i (or a read-only mount): the work cannot be saved there, so not "your input"
    (2) but 73, which a supervisor retries once someone has fixed the folder."""
    code, _, err = cli("train", "--data", str(tiny_archive), "--preset", "tiny-cpu",
                       "--outdir", str(tmp_path / "runs"), "--kimg", "0.02", *SETS)  # fmt: skip
    assert code == 0, err
    run_dir = only_run(tmp_path / "runs")
    before = {p.name: p.read_bytes() for p in (run_dir / rundir.CHECKPOINTS).iterdir()}
    with immutable(run_dir / rundir.CHECKPOINTS):
        code, _, err = cli("train", "--resume", str(run_dir), "--kimg", "0.1")
    line = save_error_line(code, err)
    failed = run_dir / rundir.CHECKPOINTS / "ckpt-000000000040.safetensors"
    assert line.startswith(f"cannot write {failed}: Operation not permitted (not writable"), line
    assert tick_kimgs(run_dir) == [0.02, 0.04]
    after = {p.name: p.read_bytes() for p in (run_dir / rundir.CHECKPOINTS).iterdir()}
    assert after == before


def _rank_of_two(rank: int, port: int, archive: str, outdir: str, results: dict) -> None:
    from heroforge.runtime.dist import leave_process
    from heroforge.train.run import start

    become_rank(rank, 2, port)
    cfg = load_config("tiny-cpu", [*QUICK, "train.gpus=2"])
    try:
        start(archive, cfg, outdir, total_kimg=0.2, log=quiet)
        results[rank] = ("no error", "")
    except Exception as err:  # what each process ended with is the result
        results[rank] = (type(err).__name__, str(err))
    leave_process(0)  # as `heroforge train` ends a process of a group


@pytest.mark.slow
def test_every_process_stops_with_the_same_error(tiny_archive, tmp_path):
    """Only rank 0 writes, but the others must stop with it, after the same step: otherwise
    they wait in a collective for a process that left (for hours, with NCCL)."""
    with small_disk(tmp_path / "disk", DISK_MB) as disk, mp.Manager() as manager:
        results = manager.dict()
        args = (free_port(), str(tiny_archive), str(disk / "runs"), results)
        assert spawn_two(_rank_of_two, args, timeout=300)
        assert results[0][0] == "SaveError"
        assert "ckpt-000000000040.safetensors: No space left on device" in results[0][1]
        assert results[1] == results[0]
        assert tick_kimgs(only_run(disk / "runs")) == [0.02, 0.04]
