"""`heroforge manager run`: take jobs from the queue and see each through to its target kimg.

For one job the supervisor starts the trainer as a child process and then, every
job.poll_seconds, renews its lease, reads the run's progress and records it in the queue. When
the child dies it resumes the run from its newest good checkpoint with the same target (the
trainer counts kimg from the checkpoint, so exactly the remaining kimg are trained). A child that
shows no sign of life for job.hang_minutes is stopped and restarted. Failures that repeat the
same way job.max_failures times without progress in between mark the job failed, and the next
job runs. On SIGTERM/SIGINT (e.g. a spot-instance notice) the supervisor asks the child to
checkpoint, waits for it, records the job as interrupted and exits with code 75.

How a child ended is read from the run folder's ending record (rundir.Ending), not from its
exit code alone: torchrun exits 1 after its workers stopped cleanly on a SIGTERM from someone
else, and that is resumed at once without counting a failure. The life of one job (children,
waits for data and disk, backoffs) is jobrun.py's; this module takes jobs from the queue.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from pathlib import Path

from heroforge.config import config_from_toml
from heroforge.console import Log
from heroforge.errors import EXIT_RESUMABLE, HeroforgeError, UserError
from heroforge.manager import child as proc
from heroforge.manager.gpus import gpus_to_run
from heroforge.manager.jobrun import JobRun, SupervisorOptions
from heroforge.manager.queue import Job, JobState, Queue

MIN_IDLE_POLL_SECONDS = 0.1  # a due waiting job that is not ours must not make a busy loop


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()[:8]
    except OSError:
        return "unknown"


def owner_id() -> str:
    """host:boot:pid, so a supervisor can tell that a lease's owner on this host is dead."""
    return f"{socket.gethostname()}:{_boot_id()}:{os.getpid()}"


def owner_is_dead(owner: str) -> bool:
    parts = owner.split(":")
    if len(parts) < 3:
        return False
    host, boot, pid = ":".join(parts[:-2]), parts[-2], parts[-1]
    if host != socket.gethostname():
        return False  # another machine: only its lease expiry tells
    if boot != _boot_id():
        return True  # this machine rebooted since
    return not pid.isdigit() or not proc.process_alive(int(pid))


class Supervisor:
    def __init__(self, queue: Queue, options: SupervisorOptions, log: Log = print) -> None:
        self.queue, self.options, self._log = queue, options, log
        self.owner = owner_id()
        self.stopping = threading.Event()  # set by SIGTERM/SIGINT
        self._told: set[int] = set()  # jobs too big for this supervisor, already logged

    def log(self, message: str) -> None:
        self._log(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}")

    # -- the main loop --------------------------------------------------------------------
    def run(self) -> int:
        """Run jobs until stopped (exit code 75) or, with exit_when_idle, until none is left (0)."""
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        self.log(f"supervisor {self.owner} watching {self.queue.path}")
        try:
            while not self.stopping.is_set():
                self._expire_dead_owners()
                job = self.queue.claim(
                    self.owner, self.options.lease_seconds, self.options.gpus, self._fits_fewer
                )
                if job is None:
                    too_big = self._note_jobs_too_big()
                    next_look = self._next_waiting_job()
                    if self.options.exit_when_idle and next_look is None:
                        left = f"; {too_big} left for a bigger one" if too_big else ""
                        self.log(f"queue idle: nothing left that this supervisor can run{left}")
                        return 0
                    pause = self.options.idle_poll_seconds
                    if next_look is not None:
                        pause = min(pause, max(MIN_IDLE_POLL_SECONDS, next_look - time.time()))
                    self.stopping.wait(pause)
                    continue
                self.run_job(job)
            return EXIT_RESUMABLE
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)

    def _fits_fewer(self, job: Job) -> bool:
        return gpus_to_run(job, self.options.gpus) is not None

    def _next_waiting_job(self) -> float | None:
        """When the first waiting job this supervisor could run may start again (None: no
        such job): until then the supervisor is not idle, even with exit_when_idle."""
        times = [
            job.not_before or 0.0
            for job in self.queue.jobs(include_final=False)
            if job.state == JobState.WAITING
            and (job.gpus <= self.options.gpus or self._fits_fewer(job))
        ]
        return min(times, default=None)

    def _note_jobs_too_big(self) -> int:
        """How many waiting jobs need more GPUs than this supervisor has; each is named once
        in its log and in the job's events, so that the wait is not a silent one."""
        waiting = [
            job
            for job in self.queue.jobs(include_final=False)
            if job.state in (JobState.QUEUED, JobState.INTERRUPTED)
            and gpus_to_run(job, self.options.gpus) is None
        ]
        for job in waiting:
            if job.id not in self._told:
                self._told.add(job.id)
                why = (
                    f"needs {job.gpus} GPUs; this supervisor runs at most {self.options.gpus} "
                    "(manager run --gpus)"
                )
                self.log(f"job {job.id} ({job.name}) {why}: it waits for a bigger supervisor")
                self.queue.record(job.id, "waiting", reason=why)
        return len(waiting)

    def _on_signal(self, signum: int, _frame: object) -> None:
        self.log(f"received {signal.Signals(signum).name}: checkpointing and stopping")
        self.stopping.set()

    def _expire_dead_owners(self) -> None:
        for job in self.queue.jobs(include_final=False):
            if job.state == JobState.RUNNING and job.lease_owner and owner_is_dead(job.lease_owner):
                self.queue.expire_lease(job.id, job.lease_owner)

    # -- one job ----------------------------------------------------------------------------
    def run_job(self, job: Job) -> None:
        self.log(f"job {job.id} ({job.name}): {job.kimg:.3f} / {job.target_kimg:g} kimg")
        try:
            cfg = config_from_toml((job.dir / "config.toml").read_text(encoding="utf-8"))
        except (OSError, UserError) as err:
            self.finish(job, JobState.FAILED, f"cannot read the job's config: {err}")
            return
        lock = self._lock(job)
        if lock is None:
            return
        try:
            JobRun(self, job, cfg, lock).run()
        except HeroforgeError as err:  # e.g. the lease was taken over: the job is its holder's
            self.log(f"job {job.id}: {err}")
        finally:
            os.close(lock)

    def _lock(self, job: Job) -> int | None:
        """The job folder's lock; an orphaned trainer of a dead supervisor may hold it while it
        writes its last checkpoint, so wait for that (keeping our lease alive)."""
        deadline = time.monotonic() + self.options.stop_timeout_seconds
        while (fd := proc.lock_job(job.dir)) is None:
            if self.stopping.is_set() or time.monotonic() > deadline:
                self.log(f"job {job.id}: its folder stays locked by another process; leaving it")
                self.finish(job, JobState.INTERRUPTED, "job folder locked by another process")
                return None
            try:
                self.queue.heartbeat(job.id, self.owner, self.options.lease_seconds)
            except HeroforgeError as err:  # e.g. the lease was taken over: the job is its holder's
                self.log(f"job {job.id}: {err}")
                return None
            self.stopping.wait(0.5)
        return fd

    def finish(self, job: Job, state: JobState, reason: str | None) -> None:
        self.queue.release(job.id, self.owner, state, reason)
        self.log(f"job {job.id}: {state}" + (f" ({reason})" if reason else ""))
