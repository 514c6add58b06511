"""The supervisor waits instead of failing (missing data, a trainer that could not save), backs
off from a trainer stopped at every start, re-opens a failed job with `queue retry`, follows a
changed data file when told to, and sizes its trainers' threads (issue 26 points 3, 7, 9)."""

import json
import os
import shutil
import signal
import sys
import threading
from pathlib import Path

import pytest
from rich.console import Console

from helpers.files import archive_without_one_image
from helpers.training import tick_kimgs
from heroforge.manager import open_queue
from heroforge.manager.status import render_status
from heroforge.rundir import find_run_dir

FAST = ["--set", "job.poll_seconds=0.2", "--set", "job.retry_backoff_seconds=0.3"]
FAKE_STOPS = """
import sys
from pathlib import Path
from heroforge import rundir

counter, command = Path(sys.argv[1]), sys.argv[2:]
starts = int(counter.read_text()) if counter.exists() else 0
counter.write_text(str(starts + 1))
if "--resume" in command:
    run = Path(command[command.index("--resume") + 1])
else:  # a run folder as `heroforge train` makes it, with nothing trained yet
    run = Path(command[command.index("--outdir") + 1]) / "00000-fake"
    run.mkdir(parents=True)
    (run / "run.json").write_text("{}")
if starts < 4:  # stopped by a signal before it got anywhere
    rundir.write_ending(run, "stopped", 0, None)
    sys.exit(75)
(run / "checkpoints").mkdir()
(run / "checkpoints" / rundir.checkpoint_name(32)).write_bytes(b"")
rundir.write_ending(run, "finished", 32, rundir.checkpoint_name(32))
"""
FULL_DISK_TWICE = """
import os, sys
from pathlib import Path

counter, command = Path(sys.argv[1]), sys.argv[2:]
starts = int(counter.read_text()) if counter.exists() else 0
counter.write_text(str(starts + 1))
if starts < 2:
    print("heroforge: error: cannot write runs/ckpt.safetensors: No space left on device",
          file=sys.stderr)
    sys.exit(73)
os.execv(command[0], command)
"""


def _wrap_trainer(monkeypatch, tmp_path: Path, script: str) -> None:
    """Every trainer the supervisor starts runs `script` first, with the real command."""
    from heroforge.manager import child

    path = tmp_path / "trainer.py"
    path.write_text(script)
    real = child.train_command

    def wrapped(*args, **kwargs) -> list[str]:
        return [sys.executable, str(path), str(tmp_path / "starts"), *real(*args, **kwargs)]

    monkeypatch.setattr(child, "train_command", wrapped)


def _submit(cli, root: Path, data: Path, *args: str) -> None:
    code, _, err = cli("queue", "submit", "--root", str(root), "--data", str(data), "--preset",
                       "tiny-cpu", "--kimg", "0.032", *FAST, *args)  # fmt: skip
    assert code == 0, err


def _gaps(events: list[dict]) -> list[float]:
    """Seconds from each trainer's exit to the next start."""
    exits = [e["time"] for e in events if e["kind"] == "exit"]
    starts = [e["time"] for e in events if e["kind"] == "start"]
    return [start - end for end, start in zip(exits, starts[1:], strict=False)]


def test_a_trainer_stopped_at_every_start_is_started_again_with_a_backoff(
    cli, tiny_archive, tmp_path, monkeypatch
):
    root = tmp_path / "root"
    _submit(cli, root, tiny_archive)
    _wrap_trainer(monkeypatch, tmp_path, FAKE_STOPS)
    code, out, err = cli("manager", "run", "--root", str(root), "--exit-when-idle")
    assert code == 0, out + err
    queue = open_queue(root)
    job = queue.get(1)
    assert (job.state, job.failures) == ("done", 0), out
    assert "stopped 4 times without progress; starting again in 1.2 s" in out
    gaps = _gaps(queue.events(1))
    assert len(gaps) == 4
    for gap, backoff in zip(gaps[1:], (0.3, 0.6, 1.2), strict=True):
        assert gap >= backoff, gaps  # the first stop is resumed at once, then it backs off


@pytest.mark.slow
def test_a_trainer_that_cannot_save_makes_the_job_wait_for_disk(
    cli, tiny_archive, tmp_path, monkeypatch
):
    root = tmp_path / "root"
    _submit(cli, root, tiny_archive)
    _wrap_trainer(monkeypatch, tmp_path, FULL_DISK_TWICE)
    seen: list[str] = []
    done = threading.Event()

    def watch() -> None:  # what `heroforge status` shows while the job waits
        queue = open_queue(root)
        while not done.wait(0.05):
            job = queue.get(1)
            if job.state == "waiting" and not seen:
                console = Console(record=True, width=400)
                render_status(console, [job])
                seen.append(console.export_text())

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        code, out, err = cli("manager", "run", "--root", str(root), "--exit-when-idle")
    finally:
        done.set()
        watcher.join()
    assert code == 0, out + err
    queue = open_queue(root)
    job = queue.get(1)
    assert (job.state, job.failures) == ("done", 0), out
    waits = [e for e in queue.events(1) if e["kind"] == "waiting"]
    assert len(waits) == 2
    assert waits[0]["reason"] == (
        "waiting for disk space: heroforge: error: cannot write runs/ckpt.safetensors: "
        "No space left on device"
    )
    assert waits[1]["seconds"] >= waits[0]["seconds"] == 0.3  # a growing backoff
    assert seen, "the job was never shown as waiting"
    assert "job 1: waiting: waiting for disk space: heroforge: error: cannot write" in seen[0]
    assert "next look in" in seen[0]


@pytest.mark.slow
def test_missing_data_makes_the_job_wait_until_it_is_back(manager, tmp_path, cli):
    data = tmp_path / "heroes.zip"
    shutil.copy(manager.archive, data)
    job_id = manager.submit(0.032, data=data)
    data.rename(tmp_path / "away.zip")  # a network disk that went away
    sup = manager.supervisor()
    manager.wait_for(lambda: manager.queue.get(job_id).state == "waiting")
    (shown,) = json.loads(cli("status", "--root", str(manager.root), "--json")[1])
    assert shown["reason"] == f"waiting for its data: its data {data} is missing"
    assert shown["next_look_s"] is not None
    (tmp_path / "away.zip").rename(data)
    assert sup.wait(timeout=300) == 0, manager.logs()
    job = manager.queue.get(job_id)
    assert (job.state, job.failures) == ("done", 0), manager.logs()
    assert [e["kind"] for e in manager.queue.events(job_id)].count("waiting") >= 1


@pytest.mark.slow
def test_a_failed_job_retried_goes_on_from_its_checkpoint(manager, cli):
    job_id = manager.submit(0.128, "job.max_failures=1")
    sup = manager.supervisor()
    manager.wait_for(lambda: manager.queue.get(job_id).status_dict().get("checkpoint_kimg", 0))
    os.kill(manager.queue.get(job_id).child_pid, signal.SIGKILL)
    assert sup.wait(timeout=300) == 0, manager.logs()
    failed = manager.queue.get(job_id)
    assert failed.state == "failed"
    assert failed.reason.startswith("killed by SIGKILL")
    assert failed.reason.endswith("(1 times)")
    code, _, err = cli("queue", "retry", str(job_id), "--root", str(manager.root))
    assert (code, err.strip()) == (0, f"job {job_id}: queued")
    assert manager.supervisor().wait(timeout=300) == 0, manager.logs()
    job = manager.queue.get(job_id)
    assert job.state == "done", manager.logs()
    starts = [e for e in manager.queue.events(job_id) if e["kind"] == "start"]
    assert starts[-1]["resumed"]
    assert starts[-1]["from_kimg"] >= 0.032  # from its checkpoint, not from scratch
    assert len(list((job.dir / "runs").iterdir())) == 1  # in its own folder
    kimgs = tick_kimgs(find_run_dir(job.dir / "runs"))
    assert kimgs[-1] == pytest.approx(0.128)


@pytest.mark.slow
def test_follow_data_trains_on_the_new_file_with_the_given_cpu_threads(manager, tmp_path):
    data = tmp_path / "heroes.zip"
    shutil.copy(manager.archive, data)
    job_id = manager.submit(0.032, "job.follow_data=true", data=data)
    archive_without_one_image(manager.archive, data)  # other data than was submitted
    # the supervisors of the tests run with OMP_NUM_THREADS=1: --cpus decides
    assert manager.supervisor("--cpus", "2").wait(timeout=300) == 0, manager.logs()
    job = manager.queue.get(job_id)
    assert job.state == "done", manager.logs()
    run_dir = find_run_dir(job.dir / "runs")
    ticks = [json.loads(line) for line in (run_dir / "stats.jsonl").read_text().splitlines()]
    assert {t["threads"] for t in ticks if "threads" in t} == {2}  # as the trainer saw it
    assert job.status_dict()["threads"] == 2
