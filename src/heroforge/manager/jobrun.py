"""One claimed job on one supervisor: its trainer children, restarts, failures and waits.

Before each start the job's data is checked (datacheck.py): missing data makes the job wait,
changed data refuses it. A trainer that could not save its work (exit 73, errors.SaveError: a
full disk, a folder gone read-only) fails nothing: the job waits for the disk and is started
again, by any supervisor, after a backoff. Waiting ends the job as failed only after
job.wait_minutes without progress (`queue retry` opens it again). A trainer stopped cleanly by
someone else's signal is resumed at once, but one stopped again before it got any further
waits a growing backoff first: whatever signals every start must not make a loop.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from heroforge import rundir
from heroforge.config import Config
from heroforge.errors import EXIT_RESUMABLE, HeroforgeError, SaveError
from heroforge.manager import child as proc
from heroforge.manager.cpus import child_thread_env
from heroforge.manager.datacheck import DataProblem, data_problem
from heroforge.manager.gpus import gpus_to_run
from heroforge.manager.progress import RunProgress, read_progress
from heroforge.manager.queue import Job, JobState, Queue

KIMG_EPS = 1e-6
MAX_BACKOFF_SECONDS = 600.0  # the longest pause between two looks at a waiting or looping job


@dataclass(frozen=True)
class SupervisorOptions:
    gpus: int = 1  # the most GPUs (or CPU processes) one job may use here
    lease_seconds: float = 120.0  # a job whose lease is older than this may be taken over
    exit_when_idle: bool = False  # return when the queue has nothing to run
    idle_poll_seconds: float = 10.0  # how often an idle supervisor looks at the queue
    stop_timeout_seconds: float = 300.0  # how long a child may take to checkpoint on SIGTERM
    cpus: int | None = None  # cores for this supervisor's trainers (None: see manager/cpus.py)


class Supervising(Protocol):
    """What a JobRun needs from the supervisor that claimed its job (supervisor.Supervisor)."""

    queue: Queue
    owner: str
    options: SupervisorOptions
    stopping: threading.Event  # set by SIGTERM/SIGINT

    def log(self, message: str) -> None: ...

    def finish(self, job: Job, state: JobState, reason: str | None) -> None: ...


class JobRun:
    """The life of one claimed job on this supervisor: children, restarts, failures."""

    def __init__(self, sup: Supervising, job: Job, cfg: Config, lock_fd: int) -> None:
        self.sup, self.job, self.cfg, self.lock_fd = sup, job, cfg, lock_fd
        self.queue, self.owner = sup.queue, sup.owner
        self.outdir = job.dir / "runs"
        self._run_dir: Path | None = None  # found once the first attempt has created it
        self.log_path = job.dir / "train.log"
        self.claimed_at = time.monotonic()
        self.wall_before = float(job.status_dict().get("wall_s", 0.0))
        self.failures = 0  # consecutive failures of one kind without progress
        self.last_failure: tuple[str, float] | None = None  # (signature, checkpoint kimg)
        self.stops = 0  # clean stops in a row without progress
        self.last_stop_kimg: float | None = None  # the checkpoint the last clean stop left
        self.lease = max(sup.options.lease_seconds, 3 * cfg.job.poll_seconds)

    def run(self) -> None:
        while True:
            run_dir = self.run_dir()
            before = read_progress(run_dir)
            if run_dir is not None and before.checkpoint_kimg >= self.job.target_kimg - KIMG_EPS:
                self._release(JobState.DONE, None, before)
                return
            problem = data_problem(self.job, self.cfg)
            if problem is not None:
                self._data_problem(problem, before)
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
            if after.checkpoint_kimg > before.checkpoint_kimg + KIMG_EPS and self.job.waiting_since:
                self.job = self.queue.heartbeat(
                    self.job.id, self.owner, self.lease, waiting_since=None
                )  # it got further: a later wait is a new one
            if code == SaveError.exit_code and outcome == "exited":
                self._wait(f"waiting for disk space: {self._detail(ending)}", after)
                return
            if ending is not None and ending.resumable and outcome == "exited":
                # stopped by someone else's signal, with its checkpoint: no fault of the job
                if not self._after_clean_stop(ending, after):
                    return
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
            self.cfg.job.follow_data,
        )
        threads = child_thread_env(os.environ, self.sup.options.cpus, gpus)
        resumed = run_dir is not None
        if run_dir is not None:
            self._clear_ending(run_dir)
            self.job = self.queue.heartbeat(
                self.job.id, self.owner, self.lease, restarts=self.job.restarts + 1
            )
        with open(self.log_path, "a", encoding="utf-8") as log:
            what = f"resume from {before.checkpoint_kimg:.3f} kimg" if resumed else "start"
            given = [f"{name}={value}" for name, value in threads.items()]
            line = " ".join([*given, *command])
            log.write(f"== {time.strftime('%Y-%m-%d %H:%M:%S')} {what}: {line}\n")
        child = proc.start_child(command, self.log_path, self.lock_fd, threads)
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
        detail = self._detail(ending)
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
        return not self._pause(delay * 2 ** (self.failures - 1), after)

    def _detail(self, ending: rundir.Ending | None) -> str:
        """What the trainer said last about why it ended."""
        if ending is not None and ending.how == "crashed" and ending.error:
            return ending.error  # the trainer's own words, not a guess from the log's tail
        return proc.last_error_line(self.log_path)

    def _after_clean_stop(self, ending: rundir.Ending, after: RunProgress) -> bool:
        """A clean stop is resumed at once, unless the last one left the same checkpoint: then
        after a backoff that doubles with each such stop. False: the supervisor is stopping."""
        again = self.last_stop_kimg is not None and after.checkpoint_kimg <= self.last_stop_kimg
        self.stops = self.stops + 1 if again else 0
        self.last_stop_kimg = after.checkpoint_kimg
        if not self.stops:
            self.sup.log(f"job {self.job.id}: {ending.describe()}; resuming")
            return True
        delay = min(MAX_BACKOFF_SECONDS, self.cfg.job.retry_backoff_seconds * 2 ** (self.stops - 1))
        reason = f"stopped {self.stops + 1} times without progress; starting again in {delay:g} s"
        self.sup.log(f"job {self.job.id}: {ending.describe()}, {reason}")
        self.job = self.queue.heartbeat(self.job.id, self.owner, self.lease, reason=reason)
        return self._pause(delay, after)

    def _pause(self, seconds: float, progress: RunProgress) -> bool:
        """Wait, keeping the lease; False (and the job released as interrupted) when the
        supervisor is told to stop meanwhile."""
        end = time.monotonic() + seconds
        while not self.sup.stopping.is_set() and (left := end - time.monotonic()) > 0:
            self.sup.stopping.wait(min(left, self.cfg.job.poll_seconds))
            self.queue.heartbeat(self.job.id, self.owner, self.lease)
        if self.sup.stopping.is_set():
            self._release(JobState.INTERRUPTED, "supervisor stopped", progress)
            return False
        return True

    # -- waiting ----------------------------------------------------------------------------
    def _data_problem(self, problem: DataProblem, progress: RunProgress) -> None:
        self.sup.log(f"job {self.job.id}: {problem.reason}")
        if problem.may_come_back:
            self._wait(f"waiting for its data: {problem.reason}", progress)
        else:
            self._release(JobState.FAILED, f"refused: {problem.reason}", progress)

    def _wait(self, reason: str, progress: RunProgress) -> None:
        """Hand the job back as waiting, to be looked at again after a backoff as long as it
        has waited so far (so the pauses double), or fail it after job.wait_minutes."""
        jc = self.cfg.job
        now = time.time()
        waited = now - (self.job.waiting_since or now)
        if waited >= jc.wait_minutes * 60:
            gave_up = f"gave up after {waited / 60:.1f} min (job.wait_minutes)"
            self._release(JobState.FAILED, f"{reason}; {gave_up}", progress)
            return
        delay = min(MAX_BACKOFF_SECONDS, max(jc.retry_backoff_seconds, waited))
        if not self._store_progress(progress):
            return
        self.queue.wait(self.job.id, self.owner, reason, delay)
        self.sup.log(f"job {self.job.id}: {reason}; looking again in {delay:g} s")

    def _release(self, state: JobState, reason: str | None, progress: RunProgress) -> None:
        if self._store_progress(progress):
            self.sup.finish(self.job, state, reason)

    def _store_progress(self, progress: RunProgress) -> bool:
        """The last progress reading, before the job is let go; False: the lease was lost (the
        job is its new holder's to finish)."""
        try:
            status = json.dumps(self._status(progress))
            self.queue.heartbeat(
                self.job.id, self.owner, self.lease, kimg=progress.kimg, status=status
            )
        except HeroforgeError:
            return False
        return True
