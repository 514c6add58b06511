"""The supervisor sees a job to its exact target through kill -9s of the trainer and of itself,
racing supervisors, hangs, SIGTERM, cancel requests and jobs that keep failing."""

import os
import random
import signal
from pathlib import Path

import pytest
import torch

from helpers.training import checkpoint_tensors, tick_kimgs
from heroforge.nets.loading import load_latest
from heroforge.rundir import find_run_dir

TARGET = 0.256  # 32 steps of 8 images; a checkpoint every 0.032 kimg
INTERVAL = 0.032


def _run_dir(manager, job_id: int) -> Path:
    return find_run_dir(manager.queue.get(job_id).dir / "runs")


def _is_trainer(pid: int | None) -> bool:
    try:
        return pid is not None and b"train" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


@pytest.mark.slow
def test_kill9_of_trainer_and_supervisor_loses_nothing(manager):
    reference = manager.submit(TARGET)
    faulty = manager.submit(TARGET)
    manager.queue.pause(faulty)
    manager.supervisor().wait(timeout=300)  # the reference job, uninterrupted
    assert manager.queue.get(reference).state == "done", manager.logs()
    manager.queue.resume(faulty)

    rng = random.Random(5)
    sup = manager.supervisor()
    killed_at: list[float] = []
    for round_ in range(4):
        threshold = (round_ + 1) * 0.048 + rng.uniform(0, 0.016)  # random points, spread out
        manager.wait_for(lambda t=threshold: manager.queue.get(faulty).kimg >= t)
        job = manager.queue.get(faulty)
        if round_ == 2:  # once: the supervisor itself; its orphaned trainer checkpoints and exits
            sup.send_signal(signal.SIGKILL)
            sup.wait()
            sup = manager.supervisor()
        elif _is_trainer(job.child_pid):
            os.kill(job.child_pid, signal.SIGKILL)
            killed_at.append(job.kimg)
    assert sup.wait(timeout=300) == 0, manager.logs()

    job = manager.queue.get(faulty)
    assert (job.state, job.kimg) == ("done", TARGET), manager.logs()
    assert len(killed_at) == 3
    assert job.restarts >= 4
    run_dir = _run_dir(manager, faulty)
    assert tick_kimgs(run_dir) == pytest.approx([INTERVAL * i for i in range(1, 9)])
    a = checkpoint_tensors(_run_dir(manager, reference), with_extra=True)
    b = checkpoint_tensors(run_dir, with_extra=True)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), "weights differ from the uninterrupted run"

    events = manager.queue.events(faulty)
    kills = [e for e in events if e["kind"] == "exit" and e["code"] == -signal.SIGKILL]
    assert len(kills) == 3
    for kill in kills:
        resumed = next(e for e in events[events.index(kill) :] if e["kind"] == "start")
        assert kill["kimg"] - resumed["from_kimg"] <= INTERVAL + 1e-9  # lost <= 1 checkpoint
    assert any(e["kind"] == "taken over" for e in events)


@pytest.mark.slow
def test_two_supervisors_never_run_one_job_twice(manager):
    jobs = [manager.submit(0.032) for _ in range(3)]
    first, second = manager.supervisor(), manager.supervisor()
    assert first.wait(timeout=300) == 0, manager.logs()
    assert second.wait(timeout=300) == 0, manager.logs()
    owners = set()
    for job_id in jobs:
        events = manager.queue.events(job_id)
        assert manager.queue.get(job_id).state == "done"
        assert [e["kind"] for e in events].count("start") == 1, events
        owners.add(next(e["owner"] for e in events if e["kind"] == "claimed"))
    assert len(owners) == 2, manager.logs()  # both took part


@pytest.mark.slow
def test_sigterm_checkpoints_and_the_next_supervisor_resumes_first(manager):
    job_id = manager.submit(TARGET)
    later = manager.submit(0.032, "job.priority=9")
    manager.queue.pause(later)
    sup = manager.supervisor()
    manager.wait_for(lambda: manager.queue.get(job_id).kimg >= 0.064)
    manager.queue.resume(later)  # a higher priority arrives while the job runs
    sup.send_signal(signal.SIGTERM)
    assert sup.wait(timeout=120) == 75, manager.logs()
    job = manager.queue.get(job_id)
    assert job.state == "interrupted"
    assert job.child_pid is None
    stopped_at = tick_kimgs(_run_dir(manager, job_id))[-1]
    saved = load_latest(_run_dir(manager, job_id) / "checkpoints")[0].meta["nimg"]
    assert saved >= round(stopped_at * 1000)  # the step it was in when told to stop: none lost
    manager.supervisor().wait(timeout=300)
    events = manager.queue.events(job_id)
    claims = [e["time"] for e in events if e["kind"] == "claimed"]
    later_claim = next(e["time"] for e in manager.queue.events(later) if e["kind"] == "claimed")
    assert claims[1] < later_claim  # the interrupted job went before the higher priority
    assert manager.queue.get(job_id).state == "done"
    assert tick_kimgs(_run_dir(manager, job_id))[-1] == pytest.approx(TARGET)


@pytest.mark.slow
def test_cancel_and_hang(manager):
    cancelled = manager.submit(10.0)
    hung = manager.submit(0.128, "job.hang_minutes=0.2")  # start-up takes seconds
    sup = manager.supervisor("--stop-timeout", "3")
    manager.wait_for(lambda: manager.queue.get(cancelled).kimg >= 0.032)
    manager.queue.cancel(cancelled)
    manager.wait_for(lambda: _is_trainer(manager.queue.get(hung).child_pid))
    stopped = manager.queue.get(hung).child_pid
    os.kill(stopped, signal.SIGSTOP)  # alive but silent: a hang
    assert sup.wait(timeout=300) == 0, manager.logs()
    assert manager.queue.get(cancelled).state == "cancelled"
    assert list((_run_dir(manager, cancelled) / "checkpoints").glob("ckpt-*.safetensors"))
    job = manager.queue.get(hung)
    assert job.state == "done", manager.logs()
    assert any(e["kind"] == "exit" and e["why"] == "hang" for e in manager.queue.events(hung))


@pytest.mark.slow
def test_a_job_that_fails_the_same_way_is_marked_failed_and_the_next_runs(manager):
    broken = manager.submit(0.032, "job.max_failures=2", "job.retry_backoff_seconds=0.1")
    # a file where its trainer makes the run folder: every start fails the same way
    (manager.queue.get(broken).dir / "runs").write_text("in the way")
    fine = manager.submit(0.032)
    assert manager.supervisor().wait(timeout=300) == 0, manager.logs()
    job = manager.queue.get(broken)
    assert job.state == "failed"
    assert "2 times" in job.reason
    assert "is a file" in job.reason
    assert manager.queue.get(fine).state == "done"
