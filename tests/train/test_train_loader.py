"""Training with data workers computes what training without them does, stops and resumes."""

import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from helpers.training import EVERY_PHASE, checkpoint_tensors, only_run, quiet, tick_kimgs
from heroforge.config import load_config
from heroforge.nets.loading import load_latest
from heroforge.train.run import resume, start

SETTINGS = [*EVERY_PHASE, "data.mirror=true", "train.tick_kimg=0.032"]
SETTINGS += ["train.checkpoint_kimg=0.032", "train.keep_checkpoints=20"]
TARGET = 0.096  # 12 steps of 8 images


def _same_state(a_run: Path, b_run: Path) -> None:
    a = checkpoint_tensors(a_run, with_extra=True)
    b = checkpoint_tensors(b_run, with_extra=True)
    assert a.keys() == b.keys()
    assert [k for k in a if not torch.equal(a[k], b[k])] == []
    assert tick_kimgs(a_run) == tick_kimgs(b_run)


def _children() -> set[int]:
    return {p.pid for p in multiprocessing.active_children()}


@pytest.mark.slow
def test_training_with_data_workers_equals_training_without(tiny_archive, tmp_path):
    before = _children()
    for workers in (0, 2):
        cfg = load_config("tiny-cpu", [*SETTINGS, f"data.workers={workers}"])
        start(tiny_archive, cfg, tmp_path / str(workers), total_kimg=TARGET, log=quiet)
        assert _children() == before  # the workers ended with the run
    _same_state(only_run(tmp_path / "0"), only_run(tmp_path / "2"))


@pytest.mark.slow
def test_a_stop_with_data_workers_resumes_bit_for_bit(tiny_archive, tmp_path):
    cfg = load_config("tiny-cpu", [*SETTINGS, "data.workers=2"])
    start(tiny_archive, cfg, tmp_path / "whole", total_kimg=TARGET, log=quiet)

    def stop_at_the_first_checkpoint(line: str) -> None:
        if line.startswith("checkpoint"):
            os.kill(os.getpid(), signal.SIGTERM)  # the trainer's handler: one more step, stop

    run_dir, status = start(tiny_archive, cfg, tmp_path / "stopped", total_kimg=TARGET,
                            log=stop_at_the_first_checkpoint)  # fmt: skip
    assert status == "interrupted"
    checkpoint, _ = load_latest(run_dir / "checkpoints")
    assert 0 < checkpoint.meta["progress"]["nimg"] < TARGET * 1000
    assert resume(run_dir, log=quiet) == (run_dir, "done")  # the loader restarts at that nimg
    _same_state(only_run(tmp_path / "whole"), run_dir)


def _group_members(pgid: int) -> list[int]:
    """Processes still in the process group (zombies included: they were not reaped)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # ended while we looked
            continue
        if int(fields[2]) == pgid:
            members.append(int(stat.parent.name))
    return members


@pytest.mark.slow
def test_sigterm_to_the_whole_group_with_workers_checkpoints_and_leaves_no_process(
    tiny_archive, tmp_path
):
    """systemd and SLURM signal every process of the job, the data workers too."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    sets = [arg for s in [*SETTINGS, "data.workers=2"] for arg in ("--set", s)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "heroforge", "train", "--data", str(tiny_archive), "--preset",
         "tiny-cpu", "--outdir", str(tmp_path), "--kimg", "100", *sets],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, start_new_session=True,
    )  # fmt: skip
    deadline = time.time() + 300
    while time.time() < deadline and not list(tmp_path.glob("*/checkpoints/ckpt-*.json")):
        time.sleep(0.05)
    assert len(_group_members(proc.pid)) == 3  # the trainer and its two data workers
    os.killpg(proc.pid, signal.SIGTERM)
    code = proc.wait(timeout=120)
    output = proc.stdout.read().decode() if proc.stdout else ""
    assert code == 75, output
    checkpoint, problems = load_latest(only_run(tmp_path) / "checkpoints")
    assert not problems
    assert checkpoint.meta["progress"]["nimg"] > 32
    assert _group_members(proc.pid) == []
