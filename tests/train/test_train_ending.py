"""The run folder records how each training session ended: stopped, finished or crashed."""

import errno
import os
import signal

import pytest

from heroforge import rundir
from heroforge.config import load_config
from heroforge.errors import SaveError
from heroforge.train import checkpoint as ckpt
from heroforge.train.loop import Trainer
from heroforge.train.run import resume, start

QUICK = ["train.tick_kimg=0.032", "train.checkpoint_kimg=0.032", "train.keep_checkpoints=20"]


def _signal_at_step(monkeypatch, at_step: int, seen: list) -> None:
    """A real SIGTERM to this process after step `at_step`; every step notes the ending record
    the run folder holds while it trains (what a kill -9 at that moment would leave)."""
    step = Trainer.step

    def step_then_signal(self, stats):
        step(self, stats)
        seen.append(rundir.read_ending(self.run_dir))
        if self.progress.step == at_step:
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(Trainer, "step", step_then_signal)


def test_a_signal_records_a_clean_stop_and_a_resume_clears_it_until_it_finishes(
    tiny_archive, tmp_path, monkeypatch
):
    cfg = load_config("tiny-cpu", QUICK)
    seen: list = []
    _signal_at_step(monkeypatch, 3, seen)  # 3 steps of 4 images: between two checkpoints
    run_dir, outcome = start(tiny_archive, cfg, tmp_path, total_kimg=0.064, log=lambda _: None)
    assert outcome == "interrupted"
    stopped = rundir.read_ending(run_dir)
    assert stopped is not None
    assert stopped.how == "stopped"
    assert stopped.resumable
    assert stopped.nimg == 12
    assert stopped.checkpoint == rundir.checkpoint_name(12)  # the stop's own checkpoint
    assert stopped.error is None
    assert rundir.read_marker(run_dir / rundir.CHECKPOINTS, rundir.LATEST) == stopped.checkpoint

    seen.clear()
    _signal_at_step(monkeypatch, -1, seen)  # no signal this time
    assert resume(run_dir, log=lambda _: None) == (run_dir, "done")
    assert seen  # it trained...
    assert set(seen) == {None}  # ...with no record claiming a clean stop a kill -9 would keep
    finished = rundir.read_ending(run_dir)
    assert finished is not None
    assert finished.how == "finished"
    assert finished.nimg == 64
    assert finished.checkpoint == rundir.checkpoint_name(64)


def test_a_crash_records_its_one_line_error_and_still_raises(tiny_archive, tmp_path, monkeypatch):
    cfg = load_config("tiny-cpu", QUICK)

    def no_space(*_args, **_kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ckpt, "save_networks", no_space)
    with pytest.raises(SaveError, match="No space left on device"):
        start(tiny_archive, cfg, tmp_path, total_kimg=0.032, log=lambda _: None)
    (run_dir,) = list(tmp_path.iterdir())
    crashed = rundir.read_ending(run_dir)
    assert crashed is not None
    assert crashed.how == "crashed"
    assert not crashed.resumable
    assert crashed.nimg == 32
    assert crashed.checkpoint is None  # none was ever written
    failed = run_dir / rundir.CHECKPOINTS / rundir.checkpoint_name(32)
    assert crashed.error is not None
    assert crashed.error.startswith(f"SaveError: cannot write {failed}: No space left on device")


def test_a_record_that_cannot_be_written_hides_nothing(tiny_archive, tmp_path, monkeypatch):
    def unwritable(*_args, **_kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(rundir, "write_ending", unwritable)
    with pytest.raises(SaveError, match=r"ending\.json: Read-only file system"):  # it is a write
        start(tiny_archive, load_config("tiny-cpu", QUICK), tmp_path / "a", total_kimg=0.032,
              log=lambda _: None)  # fmt: skip
    run_dir = next((tmp_path / "a").iterdir())
    assert rundir.read_ending(run_dir) is None
    assert rundir.read_marker(run_dir / rundir.CHECKPOINTS, rundir.LATEST)  # the work is saved

    monkeypatch.setattr(ckpt, "save_networks", unwritable)
    said: list[str] = []
    with pytest.raises(SaveError, match="safetensors: Read-only file system"):  # the crash's own
        start(tiny_archive, load_config("tiny-cpu", QUICK), tmp_path / "b", total_kimg=0.032,
              log=said.append)  # fmt: skip
    assert any("could not record how training ended (crashed)" in line for line in said), said


@pytest.mark.slow
def test_a_sigterm_to_torchrun_leaves_a_clean_stop_on_record(tiny_archive, tmp_path):
    """torchrun ends with its own exit code after a stop (1 in the releases we know): the record
    is what tells a supervisor or a SLURM script that the run stopped cleanly."""
    import subprocess
    import sys
    import time

    from helpers.training import only_run

    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node", "2", "-m", "heroforge", "train", "--data", str(tiny_archive),
               "--preset", "tiny-cpu", "--outdir", str(tmp_path / "runs"), "--kimg", "100",
               "--set", "train.gpus=2", *(f"--set={s}" for s in QUICK)]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    torchrun = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:  # a first checkpoint: both workers are training
        runs = tmp_path / "runs"
        found = [p for p in runs.glob("*/checkpoints/ckpt-*.safetensors")] if runs.is_dir() else []
        if found or torchrun.poll() is not None:
            break
        time.sleep(0.5)
    torchrun.send_signal(signal.SIGTERM)
    _, err = torchrun.communicate(timeout=600)
    ending = rundir.read_ending(only_run(tmp_path / "runs"))
    assert ending is not None, err
    assert ending.how == "stopped", err
    assert ending.resumable
    assert ending.checkpoint == rundir.read_marker(
        only_run(tmp_path / "runs") / rundir.CHECKPOINTS, rundir.LATEST
    )


@pytest.mark.slow
def test_a_sigterm_while_training_starts_up_stops_with_a_checkpoint(tiny_archive, tmp_path):
    """Before the trainer's own handler is in place (the networks are being built), a SIGTERM
    is noted: training takes one step, checkpoints and exits 75, not 143 with nothing saved."""
    import subprocess
    import sys
    import time

    from helpers.training import only_run

    command = [
        sys.executable,
        "-m",
        "heroforge",
        "train",
        "--data",
        str(tiny_archive),
        "--preset",
        "tiny-cpu",
        "--outdir",
        str(tmp_path / "runs"),
        "--kimg",
        "100",
    ]
    trainer = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while not list(tmp_path.glob("runs/*/run.json")) and trainer.poll() is None:
        assert time.monotonic() < deadline, "no run folder in time"
        time.sleep(0.02)
    trainer.send_signal(signal.SIGTERM)  # the run folder exists: the Trainer is being built
    _, err = trainer.communicate(timeout=300)
    assert trainer.returncode == 75, err
    run_dir = only_run(tmp_path / "runs")
    ending = rundir.read_ending(run_dir)
    assert ending is not None, err
    assert ending.how == "stopped"
    assert ending.checkpoint is not None
