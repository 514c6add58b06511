"""The queue file: submit checks, states, claims and leases, and damaged or busy queue files."""

import errno
import json
import os
import sqlite3
import time

import pytest

from heroforge.errors import OperationalError, UserError
from heroforge.manager import open_queue, submit
from heroforge.manager import queue as queue_module
from heroforge.manager.queue import JobState
from heroforge.manager.spec import read_spec, spec_from_options


@pytest.fixture
def queue(tmp_path):
    return open_queue(tmp_path / "root")


def _spec(archive, *overrides: str, kimg: float = 0.064):
    return spec_from_options(archive, "tiny-cpu", kimg, list(overrides))


def test_submit_freezes_the_config_and_fingerprints_the_data(queue, tiny_archive):
    job = submit(queue, _spec(tiny_archive, "job.priority=3"))
    assert (job.state, job.priority, job.target_kimg, job.gpus) == ("queued", 3, 0.064, 1)
    assert (job.dir / "config.toml").read_text().count("priority = 3") == 1
    assert len(job.fingerprint) == 64
    assert job.dir.parent == queue.path.parent / "jobs"
    assert [e["kind"] for e in queue.events(job.id)] == ["submitted"]


def test_a_state_is_a_job_state_stored_and_shown_as_its_text(queue, tiny_archive):
    from heroforge.manager.status import summary

    job = submit(queue, _spec(tiny_archive))
    assert job.state is JobState.QUEUED
    queue.pause(job.id)
    db = sqlite3.connect(queue.path)
    try:
        assert db.execute("SELECT state FROM jobs").fetchall() == [("paused",)]
    finally:
        db.close()
    assert queue.get(job.id).state is JobState.PAUSED
    assert json.loads(json.dumps(summary(queue.get(job.id))))["state"] == "paused"


def test_duplicate_submit_is_refused_unless_allowed(queue, tiny_archive):
    first = submit(queue, _spec(tiny_archive))
    with pytest.raises(UserError, match=f"job {first.id} .*--allow-duplicate"):
        submit(queue, _spec(tiny_archive))
    assert submit(queue, _spec(tiny_archive), allow_duplicate=True).id == first.id + 1
    assert submit(queue, _spec(tiny_archive, kimg=0.128)).id == first.id + 2  # another target


def test_spec_file_is_read_relative_to_itself(queue, tiny_archive, tmp_path):
    folder = tmp_path / "specs"
    folder.mkdir()
    (folder / "data.zip").write_bytes(tiny_archive.read_bytes())
    (folder / "job.toml").write_text(
        'data = "data.zip"\npreset = "tiny-cpu"\nkimg = 0.5\nset = ["train.seed=4"]\n'
    )
    spec = read_spec(folder / "job.toml")
    assert (spec.data, spec.target_kimg, spec.cfg.train.seed) == (folder / "data.zip", 0.5, 4)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("data = [", "not valid TOML"),
        ('data = "x.zip"\ncolour = 3\n', "unknown key 'colour'"),
        ("kimg = 4\n", "needs data"),
        ('data = "missing.zip"\n', "does not exist"),
        ('data = "job.toml"\nkimg = "lots"\n', "kimg .* must be a number"),
        ('data = "job.toml"\nset = "train.seed=1"\n', "list of"),
        ('data = "job.toml"\npreset = "tiny-cpu"\nset = ["train.gpus=3"]\n', "train.batch"),
        ('data = "job.toml"\npreset = "nope"\n', "unknown preset"),
    ],
)
def test_malformed_specs_are_refused_in_one_line(tmp_path, text, message):
    (tmp_path / "job.toml").write_text(text)
    with pytest.raises(UserError, match=message) as err:
        read_spec(tmp_path / "job.toml")
    assert "\n" not in str(err.value)


def test_data_that_is_not_a_dataset_is_refused_before_queueing(queue, tmp_path):
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"not a zip")
    with pytest.raises(UserError):
        submit(queue, _spec(bad))
    assert queue.jobs() == []


def test_full_disk_while_creating_the_job_leaves_no_job(queue, tiny_archive, monkeypatch):
    def no_space(*_args, **_kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("heroforge.manager.atomic_write_text", no_space)
    with pytest.raises(OperationalError, match="No space left") as err:
        submit(queue, _spec(tiny_archive))
    assert "\n" not in str(err.value)
    assert queue.jobs() == []
    assert not list((queue.path.parent / "jobs").iterdir())
    monkeypatch.undo()
    assert submit(queue, _spec(tiny_archive)).id == 1  # the queue still works


def test_damaged_queue_file_gives_one_line_and_stays_untouched(tmp_path):
    path = tmp_path / "root" / "queue.sqlite3"
    path.parent.mkdir()
    garbage = b"this is not sqlite" * 100
    path.write_bytes(garbage)
    with pytest.raises(OperationalError, match="damaged") as err:
        open_queue(tmp_path / "root")
    assert "\n" not in str(err.value)
    assert path.read_bytes() == garbage


def test_busy_queue_file_gives_one_line(queue, monkeypatch):
    monkeypatch.setattr(queue_module, "BUSY_TIMEOUT_MS", 200)
    blocker = sqlite3.connect(queue.path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(OperationalError, match="locked by another process") as err:
            queue.jobs()
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert "\n" not in str(err.value)
    assert queue.jobs() == []


def test_a_root_under_a_file_is_a_user_error(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(UserError, match="cannot create the manager root") as err:
        open_queue(tmp_path / "file" / "root")
    assert "\n" not in str(err.value)


def test_claim_order_interrupted_first_then_priority_then_age(queue, tiny_archive):
    low = submit(queue, _spec(tiny_archive, kimg=0.1))
    high = submit(queue, _spec(tiny_archive, "job.priority=5", kimg=0.2))
    later = submit(queue, _spec(tiny_archive, "job.priority=5", kimg=0.3))
    big = submit(queue, _spec(tiny_archive, "train.gpus=2", kimg=0.4))
    order = []
    while (job := queue.claim("me:boot:1", 60, max_gpus=1)) is not None:
        order.append(job.id)
        if order == [high.id]:  # stopped once by a spot notice
            queue.release(job.id, "me:boot:1", "interrupted", "spot notice")
    assert order == [high.id, high.id, later.id, low.id]  # the interrupted one comes back first
    assert queue.get(big.id).state == "queued"  # needs 2 GPUs: not for this supervisor


def test_a_lease_that_is_not_renewed_expires_and_the_job_is_taken_over(queue, tiny_archive):
    job = submit(queue, _spec(tiny_archive))
    assert queue.claim("far:boot:1", 0.3, 1).id == job.id
    assert queue.claim("here:boot:2", 60, 1) is None  # the lease still holds
    time.sleep(0.4)
    taken = queue.claim("here:boot:2", 60, 1)
    assert (taken.id, taken.lease_owner) == (job.id, "here:boot:2")
    assert queue.events(job.id)[-1] == {
        "time": queue.events(job.id)[-1]["time"],
        "kind": "taken over",
        "owner": "here:boot:2",
        "previous": "far:boot:1",
    }
    with pytest.raises(OperationalError, match="no longer held by far:boot:1"):
        queue.heartbeat(job.id, "far:boot:1", 60)
    queue.release(job.id, "far:boot:1", "done")  # the old owner's late release is ignored
    assert queue.get(job.id).state == "running"


def test_a_supervisor_that_lost_its_lease_leaves_the_job_to_its_new_holder(queue, tiny_archive):
    from heroforge.manager.child import lock_job
    from heroforge.manager.supervisor import Supervisor, SupervisorOptions

    job = submit(queue, _spec(tiny_archive))
    said: list[str] = []
    sup = Supervisor(queue, SupervisorOptions(lease_seconds=0.3), said.append)
    mine = queue.claim(sup.owner, 0.3, 1)
    time.sleep(0.4)
    assert queue.claim("far:boot:2", 60, 1).id == job.id  # taken over: our lease expired
    held = lock_job(job.dir)  # an orphaned trainer still writes: the supervisor must wait
    try:
        sup.run_job(mine)
    finally:
        os.close(held)
    assert f"job {job.id}: job {job.id} is no longer held by {sup.owner}" in said[-1]
    after = queue.get(job.id)
    assert (after.state, after.lease_owner) == ("running", "far:boot:2")


def test_a_job_too_big_for_the_supervisor_is_named_not_skipped_silently(queue, tiny_archive):
    from heroforge.manager.supervisor import Supervisor, SupervisorOptions

    big = submit(queue, _spec(tiny_archive, "train.gpus=2"))
    said: list[str] = []
    options = SupervisorOptions(gpus=1, exit_when_idle=True)
    assert Supervisor(queue, options, said.append).run() == 0
    assert any(f"job {big.id} " in line and "needs 2 GPUs" in line for line in said), said
    assert "1 left for a bigger one" in said[-1]
    assert queue.get(big.id).state == "queued"
    assert [e["kind"] for e in queue.events(big.id)][-1] == "waiting"


def test_pause_cancel_resume_and_priority(queue, tiny_archive):
    a = submit(queue, _spec(tiny_archive, kimg=0.1))
    b = submit(queue, _spec(tiny_archive, kimg=0.2))
    assert queue.pause(a.id).state == "paused"
    assert queue.claim("me:x:1", 60, 1).id == b.id  # paused jobs are not claimed
    assert queue.cancel(b.id).request == "cancel"  # running: its supervisor carries it out
    assert queue.get(b.id).state == "running"
    assert queue.resume(a.id).state == "queued"
    assert queue.set_priority(a.id, 9).priority == 9
    with pytest.raises(UserError, match="within"):  # SQLite holds 64 bits: no overflow trace
        queue.set_priority(a.id, 10**20)
    assert queue.cancel(a.id).state == "cancelled"
    with pytest.raises(UserError, match="already cancelled"):
        queue.pause(a.id)
    with pytest.raises(UserError, match="not paused"):
        queue.resume(a.id)
    with pytest.raises(UserError, match="no job 99"):
        queue.get(99)


def test_progress_is_the_further_of_the_last_tick_and_the_newest_checkpoint(tmp_path):
    """A stop checkpoints between ticks: that is how far a resume starts, not the tick."""
    from heroforge.manager.progress import read_progress

    (tmp_path / "stats.jsonl").write_text('{"tick": 3, "kimg": 0.5, "elapsed_s": 9.0}\n')
    assert read_progress(tmp_path).kimg == 0.5
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "ckpt-000000000688.safetensors").write_bytes(b"")
    progress = read_progress(tmp_path)
    assert (progress.kimg, progress.checkpoint_kimg) == (0.688, 0.688)
