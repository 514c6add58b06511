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
else, and that is resumed at once without counting a failure.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from heroforge import rundir
from heroforge.config import Config, config_from_toml
from heroforge.console import Log
from heroforge.errors import EXIT_RESUMABLE, HeroforgeError, UserError
from heroforge.manager import child as proc
from heroforge.manager.gpus import gpus_to_run
from heroforge.manager.progress import RunProgress, read_progress
from heroforge.manager.queue import Job, JobState, Queue

KIMG_EPS = 1e-6


@dataclass(frozen=True)
class SupervisorOptions:
    gpus: int = 1  # the most GPUs (or CPU processes) one job may use here
    lease_seconds: float = 120.0  # a job whose lease is older than this may be taken over
    exit_when_idle: bool = False  # return when the queue has nothing to run
    idle_poll_seconds: float = 10.0  # how often an idle supervisor looks at the queue
    stop_timeout_seconds: float = 300.0  # how long a child may take to checkpoint on SIGTERM


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
                    if self.options.exit_when_idle:
                        left = f"; {too_big} left for a bigger one" if too_big else ""
                        self.log(f"queue idle: nothing left that this supervisor can run{left}")
                        return 0
                    self.stopping.wait(self.options.idle_poll_seconds)
                    continue
                self.run_job(job)
            return EXIT_RESUMABLE
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)

    def _fits_fewer(self, job: Job) -> bool:
        return gpus_to_run(job, self.options.gpus) is not None

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
            self._finish(job, JobState.FAILED, f"cannot read the job's config: {err}")
            return
        lock = self._lock(job)
        if lock is None:
            return
        try:
            _JobRun(self, job, cfg, lock).run()
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
                self._finish(job, JobState.INTERRUPTED, "job folder locked by another process")
                return None
            try:
                self.queue.heartbeat(job.id, self.owner, self.options.lease_seconds)
            except HeroforgeError as err:  # e.g. the lease was taken over: the job is its holder's
                self.log(f"job {job.id}: {err}")
                return None
            self.stopping.wait(0.5)
        return fd

    def _finish(self, job: Job, state: JobState, reason: str | None) -> None:
        self.queue.release(job.id, self.owner, state, reason)
        self.log(f"job {job.id}: {state}" + (f" ({reason})" if reason else ""))


class _JobRun:
    """The life of one claimed job on this supervisor: children, restarts, failures."""

    def __init__(self, sup: Supervisor, job: Job, cfg: Config, lock_fd: int) -> None:
        self.sup, self.job, self.cfg, self.lock_fd = sup, job, cfg, lock_fd
        self.queue, self.owner = sup.queue, sup.owner
        self.outdir = job.dir / "runs"
        self._run_dir: Path | None = None  # found once the first attempt has created it
        self.log_path = job.dir / "train.log"
        self.claimed_at = time.monotonic()
        self.wall_before = float(job.status_dict().get("wall_s", 0.0))
        self.failures = 0  # consecutive failures of one kind without progress
        self.last_failure: tuple[str, float] | None = None  # (signature, checkpoint kimg)
        self.lease = max(sup.options.lease_seconds, 3 * cfg.job.poll_seconds)

    def run(self) -> None:
        while True:
            run_dir = self.run_dir()
            before = read_progress(run_dir)
            if run_dir is not None and before.checkpoint_kimg >= self.job.target_kimg - KIMG_EPS:
                self._release(JobState.DONE, None, before)
                return
            child = self._start(run_dir, before)
            outcome = self._watch(child)
            after = read_progress(self.run_dir())
            ending = rundir.read_ending(self.run_dir())
            code = child.returncode
            self.queue.record(
                self.job.id,
                "exit",
                code=code,
                kimg=after.kimg,
                checkpoint_kimg=after.checkpoint_kimg,
                why=outcome,
                ending=ending.how if ending else None,
            )
            if outcome in ("cancel", "pause"):
                stopped = JobState.CANCELLED if outcome == "cancel" else JobState.PAUSED
                self._release(stopped, None, after)
                return
            if outcome == "stop":
                self._release(JobState.INTERRUPTED, "supervisor stopped", after)
                return
            finished = code == 0 or (ending is not None and ending.how == "finished")
            if finished and after.checkpoint_kimg >= self.job.target_kimg - KIMG_EPS:
                self._release(JobState.DONE, None, after)
                return
            if ending is not None and ending.resumable and outcome == "exited":
                # stopped by someone else's signal, with its checkpoint: no fault of the job
                self.sup.log(f"job {self.job.id}: {ending.describe()}; resuming")
                continue
            if self._give_up(code, outcome, after, ending):
                return

    def run_dir(self) -> Path | None:
        """The job's run folder; it never changes once `heroforge train` has made it."""
        if self._run_dir is None:
            self._run_dir = rundir.find_run_dir(self.outdir)
        return self._run_dir

    # -- children ---------------------------------------------------------------------------
    def _start(self, run_dir: Path | None, before: RunProgress) -> subprocess.Popen:
        gpus = gpus_to_run(self.job, self.sup.options.gpus) or self.cfg.train.gpus
        if gpus != self.cfg.train.gpus:
            self.sup.log(f"job {self.job.id}: goes on with {gpus} of its {self.job.gpus} GPUs")
        command = proc.train_command(
            gpus,
            run_dir,
            self.job.data,
            self.job.dir / "config.toml",
            self.outdir,
            self.job.target_kimg,
        )
        resumed = run_dir is not None
        if run_dir is not None:
            self._clear_ending(run_dir)
            self.job = self.queue.heartbeat(
                self.job.id, self.owner, self.lease, restarts=self.job.restarts + 1
            )
        with open(self.log_path, "a", encoding="utf-8") as log:
            what = f"resume from {before.checkpoint_kimg:.3f} kimg" if resumed else "start"
            log.write(f"== {time.strftime('%Y-%m-%d %H:%M:%S')} {what}: {' '.join(command)}\n")
        child = proc.start_child(command, self.log_path, self.lock_fd)
        self.queue.record(
            self.job.id,
            "start",
            pid=child.pid,
            resumed=resumed,
            from_kimg=before.checkpoint_kimg,
            at_kimg=before.kimg,
        )
        self.sup.log(f"job {self.job.id}: {'resumed' if resumed else 'started'} (pid {child.pid})")
        return child

    def _watch(self, child: subprocess.Popen) -> str:
        """Until the child exits: "exited", or why we stopped it ("stop", "cancel", "pause",
        "hang", "lease lost")."""
        jc = self.cfg.job
        last_activity = time.monotonic()
        last_mark = None
        while True:
            self.sup.stopping.wait(jc.poll_seconds)
            if child.poll() is not None:
                self._heartbeat(child)
                return "exited"
            try:
                job = self._heartbeat(child)
            except HeroforgeError:  # the lease was lost or the queue failed: stop the child
                proc.stop_child(child, self.sup.options.stop_timeout_seconds)
                raise
            mark = self._activity_mark()
            if mark != last_mark:
                last_mark, last_activity = mark, time.monotonic()
            reason = None
            if self.sup.stopping.is_set():
                reason = "stop"
            elif job.request in ("cancel", "pause"):
                reason = job.request
            elif time.monotonic() - last_activity > jc.hang_minutes * 60:
                reason = "hang"
                self.sup.log(f"job {self.job.id}: no sign of life for {jc.hang_minutes} min")
            if reason:
                proc.stop_child(child, self.sup.options.stop_timeout_seconds)
                return reason

    def _clear_ending(self, run_dir: Path) -> None:
        """The record the next child writes must be its own: one that dies before its trainer
        starts (a torchrun that fails) must not leave the last child's clean stop behind."""
        try:
            rundir.clear_ending(run_dir)
        except OSError as err:
            self.sup.log(f"job {self.job.id}: cannot remove the old ending record: {err}")

    def _activity_mark(self) -> tuple:
        """Anything the trainer writes (log lines, stats, checkpoints) counts as life."""
        run_dir = self.run_dir()
        paths = [self.log_path]
        if run_dir is not None:
            paths += [run_dir / rundir.STATS, run_dir / rundir.CHECKPOINTS / rundir.LATEST]
        marks: list[tuple[int, int] | None] = []  # (size, mtime) of each, None: not there
        for path in paths:
            try:
                st = path.stat()
                marks.append((st.st_size, st.st_mtime_ns))
            except OSError:
                marks.append(None)
        return tuple(marks)

    def _heartbeat(self, child: subprocess.Popen | None) -> Job:
        progress = read_progress(self.run_dir())
        status = self._status(progress)
        self.job = self.queue.heartbeat(
            self.job.id,
            self.owner,
            self.lease,
            kimg=progress.kimg,
            status=json.dumps(status),
            child_pid=child.pid if child is not None and child.poll() is None else None,
        )
        return self.job

    def _status(self, progress: RunProgress) -> dict:
        wall = self.wall_before + time.monotonic() - self.claimed_at
        remaining = max(0.0, self.job.target_kimg - progress.kimg)
        spk = progress.sec_per_kimg
        return {
            **progress.as_dict(),
            "target_kimg": self.job.target_kimg,
            "eta_s": round(remaining * spk, 1) if spk else None,
            "wall_s": round(wall, 1),
            # wall time that did not become kept training: start-up, downtime between
            # attempts, and work redone after resuming from an older checkpoint
            "lost_s": round(max(0.0, wall - progress.elapsed_s), 1),
            "run_dir": str(self.run_dir() or ""),
            "updated": time.time(),
        }

    # -- endings ----------------------------------------------------------------------------
    def _give_up(
        self, code: int, outcome: str, after: RunProgress, ending: rundir.Ending | None
    ) -> bool:
        """Count a failure; True if the job is marked failed. Otherwise wait the backoff."""
        jc = self.cfg.job
        detail = proc.last_error_line(self.log_path)
        if ending is not None and ending.how == "crashed" and ending.error:
            detail = ending.error  # the trainer's own words, not a guess from the log's tail
        if outcome == "hang":
            signature = "hang"
        elif code == EXIT_RESUMABLE:  # a stop whose ending record could not be written
            signature = "interrupted"
        else:
            signature = f"{proc.describe_exit(code)}: {detail}"
        progressed = self.last_failure is None or after.checkpoint_kimg > self.last_failure[1]
        same = self.last_failure is not None and self.last_failure[0] == signature
        self.failures = 1 if progressed or not same else self.failures + 1
        self.last_failure = (signature, after.checkpoint_kimg)
        self.queue.heartbeat(
            self.job.id, self.owner, self.lease, failures=self.failures, reason=signature
        )
        self.sup.log(f"job {self.job.id}: {signature} (failure {self.failures}/{jc.max_failures})")
        if self.failures >= jc.max_failures:
            self._release(JobState.FAILED, f"{signature} ({self.failures} times)", after)
            return True
        delay = 0.0 if signature == "interrupted" else jc.retry_backoff_seconds
        self.sup.stopping.wait(delay * 2 ** (self.failures - 1))
        if self.sup.stopping.is_set():
            self._release(JobState.INTERRUPTED, "supervisor stopped", after)
            return True
        return False

    def _release(self, state: JobState, reason: str | None, progress: RunProgress) -> None:
        try:
            status = json.dumps(self._status(progress))
            self.queue.heartbeat(
                self.job.id, self.owner, self.lease, kimg=progress.kimg, status=status
            )
        except HeroforgeError:  # the lease was lost: the job is its new holder's to finish
            return
        self.sup._finish(self.job, state, reason)
