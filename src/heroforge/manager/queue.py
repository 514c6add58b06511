"""The job queue: one SQLite file (WAL mode) under the manager root.

Every change is one short transaction, so a supervisor killed at any moment leaves the queue
consistent. Supervisors claim jobs under a lease that they renew while the job runs; a lease
that is not renewed (the supervisor died) expires and the job goes to the next supervisor that
asks, before any queued job. `BEGIN IMMEDIATE` makes a claim atomic across processes, so two
supervisors never run the same job.

A job's state is a JobState; the file stores its text ("queued", "running", ...). A waiting
job (its data is missing, or its trainer could not save its work) is handed to a supervisor
again from not_before on, like an interrupted one.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from heroforge.config_sections import MAX_PRIORITY
from heroforge.errors import OperationalError, UserError, write_failure
from heroforge.manager.queue_schema import create_or_upgrade


class JobState(StrEnum):
    QUEUED = "queued"  # waits for a supervisor
    RUNNING = "running"  # claimed by a supervisor (lease_owner) until lease_expires
    INTERRUPTED = "interrupted"  # stopped on purpose (supervisor SIGTERM); runs before queued
    PAUSED = "paused"  # kept aside until `queue resume`
    WAITING = "waiting"  # for its data or for disk space (reason), looked at again at not_before
    DONE = "done"  # trained to its target kimg
    FAILED = "failed"  # failed the same way job.max_failures times, or could not start
    CANCELLED = "cancelled"  # by `queue cancel` or the web page


FINAL_STATES = (JobState.DONE, JobState.FAILED, JobState.CANCELLED)
ACTIVE_STATES = (
    JobState.QUEUED,
    JobState.RUNNING,
    JobState.INTERRUPTED,
    JobState.PAUSED,
    JobState.WAITING,
)
BUSY_TIMEOUT_MS = 10_000


@dataclass(frozen=True)
class Job:
    id: int
    name: str
    state: JobState
    priority: int
    gpus: int
    target_kimg: float
    data: str
    fingerprint: str
    config_sha: str
    job_dir: str
    created: float
    started: float | None
    finished: float | None
    lease_owner: str | None
    lease_expires: float | None
    request: str | None
    child_pid: int | None
    kimg: float
    restarts: int
    failures: int
    reason: str | None
    status: str | None  # JSON: the supervisor's last progress reading
    not_before: float | None  # a waiting job is not started again before this time
    waiting_since: float | None  # when its waiting began (it fails after job.wait_minutes)

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Job:
        return cls(**{**dict(row), "state": JobState(row["state"])})

    @property
    def dir(self) -> Path:
        return Path(self.job_dir)

    def status_dict(self) -> dict[str, Any]:
        return json.loads(self.status) if self.status else {}


class Queue:
    """All queue operations; each opens its own connection (safe across processes/threads)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            folder = self.path.parent
            raise write_failure(f"cannot create the queue's folder {folder}", err) from None
        with self._tx() as db:
            create_or_upgrade(db, self.path)

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One IMMEDIATE transaction: writers queue up behind each other instead of failing."""
        try:
            db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        except sqlite3.Error as err:
            raise OperationalError(f"cannot open the queue {self.path}: {err}") from None
        try:
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = FULL")  # a finished job survives a power cut
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        except sqlite3.Error as err:
            raise OperationalError(_describe(self.path, err)) from None
        finally:
            db.close()

    # -- submit and inspect -----------------------------------------------------------------
    def add(self, make_dir: Callable[[int], Path], **fields: Any) -> Job:
        """Insert a job; make_dir(id) creates its folder inside the same transaction, so a
        failure there (e.g. a full disk) leaves no half-made job in the queue."""
        fields = {"state": JobState.QUEUED, "created": time.time(), "job_dir": "", **fields}
        names = ", ".join(fields)
        with self._tx() as db:
            cur = db.execute(
                f"INSERT INTO jobs ({names}) VALUES ({_marks(tuple(fields))})",
                list(fields.values()),
            )
            job_id = cur.lastrowid
            assert job_id is not None  # set by every INSERT
            job_dir = make_dir(job_id)
            db.execute("UPDATE jobs SET job_dir = ? WHERE id = ?", (str(job_dir), job_id))
            _event(db, job_id, "submitted", {"target_kimg": fields.get("target_kimg")})
            return _job(db, job_id)

    def get(self, job_id: int) -> Job:
        with self._tx() as db:
            return _job(db, job_id)

    def jobs(self, include_final: bool = True) -> list[Job]:
        with self._tx() as db:
            rows = db.execute("SELECT * FROM jobs ORDER BY id").fetchall()
        found = [Job.from_row(r) for r in rows]
        return found if include_final else [j for j in found if j.state not in FINAL_STATES]

    def events(self, job_id: int) -> list[dict[str, Any]]:
        with self._tx() as db:
            rows = db.execute(
                "SELECT time, kind, detail FROM events WHERE job_id = ? ORDER BY id", (job_id,)
            ).fetchall()
        return [{"time": r["time"], "kind": r["kind"], **json.loads(r["detail"])} for r in rows]

    def find_duplicate(self, fingerprint: str, config_sha: str, target_kimg: float) -> Job | None:
        with self._tx() as db:
            row = db.execute(
                "SELECT * FROM jobs WHERE fingerprint = ? AND config_sha = ? AND target_kimg = ? "
                f"AND state IN ({_marks(ACTIVE_STATES)}) ORDER BY id LIMIT 1",
                (fingerprint, config_sha, target_kimg, *ACTIVE_STATES),
            ).fetchone()
        return Job.from_row(row) if row else None

    # -- user requests ------------------------------------------------------------------------
    def cancel(self, job_id: int) -> Job:
        return self._request(job_id, "cancel", JobState.CANCELLED)

    def pause(self, job_id: int) -> Job:
        return self._request(job_id, "pause", JobState.PAUSED)

    def _request(self, job_id: int, request: str, new_state: JobState) -> Job:
        """Waiting jobs change at once; a running job gets a request its supervisor carries
        out (checkpoint first) within one poll interval."""
        with self._tx() as db:
            job = _job(db, job_id)
            if job.state in FINAL_STATES:
                raise UserError(f"job {job_id} is already {job.state}")
            if job.state == JobState.PAUSED and new_state == JobState.PAUSED:
                return job
            if job.state == JobState.RUNNING:
                db.execute("UPDATE jobs SET request = ? WHERE id = ?", (request, job_id))
            else:
                _set_state(db, job_id, new_state, reason=f"{request} requested")
            _event(db, job_id, f"{request} requested", {"was": job.state})
            return _job(db, job_id)

    def resume(self, job_id: int) -> Job:
        with self._tx() as db:
            job = _job(db, job_id)
            if job.state == JobState.RUNNING and job.request == "pause":
                db.execute("UPDATE jobs SET request = NULL WHERE id = ?", (job_id,))
            elif job.state == JobState.PAUSED:
                db.execute(
                    "UPDATE jobs SET state = ?, reason = NULL, failures = 0, not_before = NULL, "
                    "waiting_since = NULL WHERE id = ?",
                    (JobState.QUEUED, job_id),
                )
            else:
                raise UserError(f"job {job_id} is {job.state}, not paused")
            _event(db, job_id, "resume requested", {})
            return _job(db, job_id)

    def retry(self, job_id: int) -> Job:
        """Put a failed job back in the queue: it goes on in its own folder from its newest good
        checkpoint, with its failure count cleared."""
        with self._tx() as db:
            job = _job(db, job_id)
            if job.state != JobState.FAILED:
                hint = " (`queue resume` puts a paused job back)" if job.state == "paused" else ""
                raise UserError(f"job {job_id} is {job.state}; only a failed job is retried{hint}")
            db.execute(
                "UPDATE jobs SET state = ?, reason = NULL, failures = 0, finished = NULL, "
                "not_before = NULL, waiting_since = NULL WHERE id = ?",
                (JobState.QUEUED, job_id),
            )
            _event(db, job_id, "retry requested", {"reason": job.reason})
            return _job(db, job_id)

    def set_priority(self, job_id: int, priority: int) -> Job:
        check_priority(priority)
        with self._tx() as db:
            _job(db, job_id)
            db.execute("UPDATE jobs SET priority = ? WHERE id = ?", (priority, job_id))
            return _job(db, job_id)

    # -- supervisors ---------------------------------------------------------------------------
    def claim(
        self,
        owner: str,
        lease_seconds: float,
        max_gpus: int,
        goes_on_with_fewer: Callable[[Job], bool] = lambda _job: False,
    ) -> Job | None:
        """Atomically take the next job for a supervisor with max_gpus GPUs (or a job that needs
        more, when goes_on_with_fewer says its run can go on with fewer): expired leases and
        interrupted jobs first (they hold work in progress), then queued ones by priority, then
        age."""
        now = time.time()
        with self._tx() as db:
            rows = db.execute(
                "SELECT * FROM jobs WHERE"
                "  state = :interrupted OR (state = :running AND lease_expires < :now)"
                "  OR (state = :waiting AND not_before <= :now) OR state = :queued "
                "ORDER BY CASE WHEN state = :queued THEN 1 ELSE 0 END, priority DESC, id",
                {
                    "now": now,
                    "interrupted": JobState.INTERRUPTED,
                    "running": JobState.RUNNING,
                    "queued": JobState.QUEUED,
                    "waiting": JobState.WAITING,
                },
            ).fetchall()
            jobs = map(Job.from_row, rows)
            job = next((j for j in jobs if j.gpus <= max_gpus or goes_on_with_fewer(j)), None)
            if job is None:
                return None
            db.execute(
                "UPDATE jobs SET state = ?, lease_owner = ?, lease_expires = ?, "
                "started = COALESCE(started, ?) WHERE id = ?",
                (JobState.RUNNING, owner, now + lease_seconds, now, job.id),
            )
            kind = "taken over" if job.state == JobState.RUNNING else "claimed"
            _event(db, job.id, kind, {"owner": owner, "previous": job.lease_owner})
            return _job(db, job.id)

    def heartbeat(self, job_id: int, owner: str, lease_seconds: float, **fields: Any) -> Job:
        """Renew the lease and store progress; OperationalError if the lease is no longer ours
        (another supervisor took the job over after our lease expired)."""
        with self._tx() as db:
            job = _job(db, job_id)
            if job.lease_owner != owner or job.state != JobState.RUNNING:
                raise OperationalError(f"job {job_id} is no longer held by {owner}")
            sets = {"lease_expires": time.time() + lease_seconds, **fields}
            db.execute(
                f"UPDATE jobs SET {', '.join(f'{k} = ?' for k in sets)} WHERE id = ?",
                (*sets.values(), job_id),
            )
            return _job(db, job_id)

    def expire_lease(self, job_id: int, owner: str) -> None:
        """End a lease whose owner is known to be dead, so the job need not wait for expiry."""
        with self._tx() as db:
            db.execute(
                "UPDATE jobs SET lease_expires = 0 WHERE id = ? AND lease_owner = ? AND state = ?",
                (job_id, owner, JobState.RUNNING),
            )

    def release(self, job_id: int, owner: str, state: JobState, reason: str | None = None) -> None:
        """The supervisor lets go of a job: finished, failed, paused, cancelled or interrupted."""
        with self._tx() as db:
            job = _job(db, job_id)
            if job.lease_owner != owner:
                return  # someone took it over after our lease expired: theirs now
            _set_state(db, job_id, state, reason)
            db.execute(
                "UPDATE jobs SET lease_owner = NULL, lease_expires = NULL, request = NULL, "
                "child_pid = NULL, not_before = NULL, waiting_since = NULL WHERE id = ?",
                (job_id,),
            )
            _event(db, job_id, state, {"reason": reason})

    def wait(self, job_id: int, owner: str, reason: str, seconds: float) -> None:
        """The supervisor lets go of a job that cannot go on yet (its data is missing, its
        trainer could not save): any supervisor starts it again after `seconds`."""
        now = time.time()
        with self._tx() as db:
            job = _job(db, job_id)
            if job.lease_owner != owner:
                return  # someone took it over after our lease expired: theirs now
            _set_state(db, job_id, JobState.WAITING, reason)
            db.execute(
                "UPDATE jobs SET lease_owner = NULL, lease_expires = NULL, request = NULL, "
                "child_pid = NULL, not_before = ?, waiting_since = COALESCE(waiting_since, ?) "
                "WHERE id = ?",
                (now + seconds, now, job_id),
            )
            _event(db, job_id, JobState.WAITING, {"reason": reason, "seconds": seconds})

    def next_wait_end(self) -> float | None:
        """When the first waiting job may be started again (None: no job waits)."""
        with self._tx() as db:
            row = db.execute(
                "SELECT MIN(not_before) FROM jobs WHERE state = ?", (JobState.WAITING,)
            ).fetchone()
        return row[0]

    def record(self, job_id: int, kind: str, **detail: Any) -> None:
        with self._tx() as db:
            _event(db, job_id, kind, detail)


def check_priority(priority: int) -> None:
    if abs(priority) > MAX_PRIORITY:
        raise UserError(f"a priority must lie within +-{MAX_PRIORITY:,}, got {priority}")


def _marks(values: tuple) -> str:
    return ", ".join("?" for _ in values)


def _job(db: sqlite3.Connection, job_id: int) -> Job:
    row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
    if row is None:
        raise UserError(f"there is no job {job_id}")
    return Job.from_row(row)


def _set_state(db: sqlite3.Connection, job_id: int, state: JobState, reason: str | None) -> None:
    finished = time.time() if state in FINAL_STATES else None
    db.execute(
        "UPDATE jobs SET state = ?, reason = ?, finished = ? WHERE id = ?",
        (state, reason, finished, job_id),
    )


def _event(db: sqlite3.Connection, job_id: int, kind: str, detail: dict[str, Any]) -> None:
    db.execute(
        "INSERT INTO events (job_id, time, kind, detail) VALUES (?, ?, ?, ?)",
        (job_id, time.time(), kind, json.dumps(detail)),
    )


def _describe(path: Path, err: sqlite3.Error) -> str:
    text = str(err)
    if "locked" in text or "busy" in text:
        return f"the queue {path} is locked by another process for over {BUSY_TIMEOUT_MS // 1000} s"
    if "full" in text:
        return f"cannot write the queue {path}: the disk is full (nothing was changed)"
    if "not a database" in text or "malformed" in text:
        return f"the queue file {path} is damaged ({text}); move it aside to start a new queue"
    return f"queue {path}: {text}"
