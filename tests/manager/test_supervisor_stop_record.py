"""A 2-process job whose launcher is stopped by someone else's SIGTERM: the run folder records a
clean stop, and the supervisor resumes it at once, counting no failure, whatever code the
launcher exited with (heroforge's own launcher: 75; torchrun, in the SLURM script's tests: 1)."""

import json
import os
import signal

import pytest
from rich.console import Console

from helpers.training import tick_kimgs
from heroforge import rundir
from heroforge.manager.queue import JobState
from heroforge.manager.status import render_status, summary

TARGET = 0.128  # 32 steps of 4 images, 2 per process; a tick and checkpoint every 0.032 kimg


@pytest.mark.slow
def test_a_clean_stop_of_a_two_process_job_is_resumed_without_a_failure(manager):
    job_id = manager.submit(TARGET, "train.gpus=2")
    sup = manager.supervisor("--gpus", "2")

    def training() -> bool:  # past its first tick: both workers have their signal handlers
        job = manager.queue.get(job_id)
        return job.child_pid is not None and job.kimg >= 0.032

    manager.wait_for(training, timeout=600)
    os.kill(manager.queue.get(job_id).child_pid, signal.SIGTERM)  # the launcher, not the workers
    assert sup.wait(timeout=600) == 0, manager.logs()

    job = manager.queue.get(job_id)
    assert job.state == "done", manager.logs()
    assert job.failures == 0
    assert job.restarts == 1
    exits = [e for e in manager.queue.events(job_id) if e["kind"] == "exit"]
    assert [e["ending"] for e in exits] == ["stopped", "finished"], exits
    assert exits[0]["checkpoint_kimg"] < TARGET  # it really stopped early
    run_dir = rundir.find_run_dir(job.dir / "runs")
    ending = rundir.read_ending(run_dir)
    assert ending is not None
    assert ending.how == "finished"
    assert ending.nimg == round(TARGET * 1000)
    assert summary(job)["ending"]["how"] == "finished"
    kimgs = tick_kimgs(run_dir)
    assert kimgs == sorted(set(kimgs))  # no tick twice: the resume went on from the stop
    assert kimgs[-1] == pytest.approx(TARGET)
    assert "stopped at" in manager.logs()


def test_status_shows_how_a_waiting_job_last_ended(manager, tmp_path):
    job_id = manager.submit(TARGET)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    manager.queue.claim("me", 60, 1)
    manager.queue.heartbeat(job_id, "me", 60, status=json.dumps({"run_dir": str(run_dir)}))
    manager.queue.release(job_id, "me", JobState.INTERRUPTED, "supervisor stopped")
    console = Console(record=True, width=200)
    render_status(console, [manager.queue.get(job_id)])
    assert "last session" not in console.export_text()  # no record: nothing claimed
    rundir.write_ending(run_dir, "stopped", 64, rundir.checkpoint_name(64))
    render_status(console, [manager.queue.get(job_id)])
    assert f"job {job_id}: last session stopped at 0.064 kimg" in console.export_text()
    assert summary(manager.queue.get(job_id))["ending"]["how"] == "stopped"
    rundir.write_ending(run_dir, "crashed", 96, rundir.checkpoint_name(64), "OSError: disk")
    render_status(console, [manager.queue.get(job_id)])
    said = console.export_text()
    assert "crashed at 0.096 kimg: OSError: disk; it goes on from its newest good" in said
