"""`heroforge train --gpus 2` end to end, two gloo processes on the CPU: a stop while the
checkpoint takes longer to write than torchrun would wait, and a worker that fails."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers.training import tick_kimgs
from heroforge import rundir
from heroforge.nets.loading import load_latest

LAUNCHED = Path(__file__).parent / "launched"
WAIT_S = 900  # generous: two training processes on a machine shared by several test runs
# ticks every 5 steps; no checkpoint but the stop's (the run's target is far away)
QUICK_TICKS = ["--set", "train.tick_kimg=0.02", "--set", "train.checkpoint_kimg=1000",
               "--set", "train.checkpoint_minutes=1000"]  # fmt: skip


def _heroforge(*args: str) -> list[str]:
    return [sys.executable, "-m", "heroforge", *args]


def _two_workers(archive: Path, outdir: Path) -> list[str]:
    return _heroforge("train", "--data", str(archive), "--preset", "tiny-cpu", "--gpus", "2",
                      "--kimg", "100", "--outdir", str(outdir), *QUICK_TICKS)  # fmt: skip


def _with_site(site: Path) -> dict[str, str]:
    """The environment with a test's sitecustomize.py first on the path of every process."""
    paths = [str(site), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}


def _first_tick(outdir: Path, launcher: subprocess.Popen) -> Path:
    """The run folder, once its first tick is in stats.jsonl (training is under way)."""
    deadline = time.monotonic() + WAIT_S
    while True:
        assert launcher.poll() is None, launcher.communicate()[1]
        assert time.monotonic() < deadline, "no tick in time"
        runs = list(outdir.glob("*/stats.jsonl")) if outdir.exists() else []
        try:
            if runs and tick_kimgs(runs[0].parent):
                return runs[0].parent
        except ValueError:  # a line half written
            pass
        time.sleep(0.2)


@pytest.mark.slow
def test_sigterm_while_the_checkpoint_is_slow_to_write_stops_with_it(tiny_archive, tmp_path):
    """The acceptance test of issue 22: exit 75 after a 40 s checkpoint write, which is
    complete, and `--resume` trains on to its target. An impatient second SIGTERM during the
    write changes nothing: the processes that wait for rank 0 only note it."""
    outdir = tmp_path / "runs"
    launcher = subprocess.Popen(
        _two_workers(tiny_archive, outdir),
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env=_with_site(LAUNCHED / "slow_disk"),
    )
    run = _first_tick(outdir, launcher)
    assert rundir.list_checkpoints(run / "checkpoints") == []
    launcher.send_signal(signal.SIGTERM)
    time.sleep(10)  # the stop is agreed, rank 0 writes, rank 1 waits in the barrier
    launcher.send_signal(signal.SIGTERM)
    _, err = launcher.communicate(timeout=WAIT_S)
    assert launcher.returncode == 75, err
    assert (tmp_path / "slow-write-done").exists()  # the 40 s write ran to its end
    ending = rundir.read_ending(run)
    assert ending is not None
    assert ending.how == "stopped", err
    assert f"stopped; go on with: heroforge train --resume {run}\n" in err
    checkpoint, problems = load_latest(run / "checkpoints")
    assert problems == []
    stopped_nimg = checkpoint.meta["nimg"]
    assert stopped_nimg / 1000 >= tick_kimgs(run)[0]

    target = (stopped_nimg + 20) / 1000  # five steps more
    resumed = subprocess.run(
        _heroforge("train", "--resume", str(run), "--kimg", str(target)),
        capture_output=True,
        text=True,
        timeout=WAIT_S,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert f"resumed {run} at {stopped_nimg / 1000:.3f} kimg" in resumed.stderr
    final, _ = load_latest(run / "checkpoints")
    assert final.meta["nimg"] >= target * 1000


@pytest.mark.slow
def test_a_failing_worker_ends_the_run_with_its_error(tiny_archive, tmp_path):
    """Rank 1 fails in a step; rank 0 is taken down without waiting for the kill time (its
    10 minutes outlast this test's wait), and the report leads with rank 1's error."""
    outdir = tmp_path / "runs"
    failed = subprocess.run(
        _two_workers(tiny_archive, outdir),
        capture_output=True,
        text=True,
        timeout=WAIT_S / 2,
        env=_with_site(LAUNCHED / "failing_rank"),
    )
    assert failed.returncode == 1, failed.stderr
    lines = failed.stderr.splitlines()
    report = lines.index(
        "heroforge: error: worker 1 of 2 failed (exit code 1): "
        "RuntimeError: the GPU fell off the bus"
    )
    rest = lines[report + 1 :]
    assert rest[-1].endswith("RuntimeError: the GPU fell off the bus")  # torch's "[rank1]:"
    assert all(line.startswith("[rank 1] ") for line in rest)
