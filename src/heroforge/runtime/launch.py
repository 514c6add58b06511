"""Starting the processes of a run on several GPUs of one machine, and how a process learns it
is one of several (our launcher, torchrun or SLURM's srun).

`heroforge train --gpus N` starts N copies of itself (workers: one per GPU, or N gloo processes
on a machine without one) instead of asking the user for torchrun, whose agent SIGKILLs its
workers 30 s after a stop signal (its shutdown timeout): a big checkpoint on a slow disk is then
lost, and torchrun itself exits 1 instead of 75. The launcher here:
- forwards SIGTERM, SIGINT and SIGUSR1 to every worker and waits for as long as their
  checkpoint takes; it exits 75 (resumable) when every worker stopped with one, 0 when all
  finished;
- takes the others down when a worker fails: SIGTERM at once, and SIGKILL only after
  HEROFORGE_KILL_AFTER_MIN (10 minutes) for those that do not end. A gloo peer notices a
  vanished partner at once (its socket closes) and fails too, but an NCCL peer waits inside the
  collective until the process group's timeout (HEROFORGE_DIST_TIMEOUT_MIN, hours) and cannot
  run its Python signal handler meanwhile; a worker that is just writing a periodic checkpoint
  gets the time to finish it;
- shows rank 0's output as it comes and keeps the last lines of every worker, so that the first
  line of a failure's report is the failed worker's own error. The other ranks print the same
  lines as rank 0 (the same code runs on every rank), so N copies would bury rank 0's; theirs
  appear only when they fail. Workers write into files that the launcher reads, not pipes: a
  worker whose launcher died must not die of a broken pipe at its next line.
Workers stay in the launcher's process group, so that whoever kills the group (a supervisor
that gave up waiting) kills them too; a Ctrl-C in the terminal reaches them directly and through
the launcher, which the trainer notes once. They get SIGTERM if the launcher dies (even by
kill -9), and then checkpoint and stop.
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import os
import re
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from heroforge.errors import EXIT_RESUMABLE, UserError
from heroforge.runtime.signals import STOP_SIGNALS, received

KILL_AFTER_ENV = "HEROFORGE_KILL_AFTER_MIN"  # minutes a failed run's workers get to end
KILL_AFTER_MIN = 10.0
TAIL_LINES = 40  # lines of each worker's output kept for a failure's report
RANK_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK")  # set by torchrun and by this launcher
SLURM_DEFAULT_PORT = 29500  # an srun task outside a job with an id (never in practice)
SLURM_PORT_BASE = 20000  # job J meets on SLURM_PORT_BASE + J % SLURM_PORT_BASE
_PR_SET_PDEATHSIG = 1


# -- how this process was started -------------------------------------------------------------
def is_slurm_task(env: Mapping[str, str]) -> bool:
    """One of several tasks that srun started. srun sets SLURM_STEP_ID for its tasks; the batch
    script itself has SLURM_PROCID and SLURM_NTASKS as well, but it is one process."""
    tasks = env.get("SLURM_NTASKS", "1")
    return "SLURM_PROCID" in env and "SLURM_STEP_ID" in env and tasks.isdigit() and int(tasks) > 1


def already_launched(env: Mapping[str, str]) -> bool:
    """Whether torchrun, this launcher or srun started this process as one of a group."""
    return any(name in env for name in RANK_VARIABLES) or is_slurm_task(env)


def resume_hint(env: Mapping[str, str]) -> str:
    """What to add to "heroforge train --resume RUN" for it to start as this process did."""
    if "TORCHELASTIC_RUN_ID" in env:
        return " (with the same torchrun options)"
    if is_slurm_task(env):
        return " (in an srun step of as many tasks)"
    return ""  # alone, or started by this launcher, which `--resume` starts again


def slurm_rank_env(env: Mapping[str, str]) -> dict[str, str]:
    """RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT of an srun task, from SLURM's
    variables; {} when not an srun task of several or when RANK etc. are set already (torchrun
    under srun). MASTER_ADDR: as given (a batch script may set it), else the first host of the
    job's node list. MASTER_PORT: as given, else one derived from the job id, so that two jobs
    that share a node do not meet on one port."""
    if any(name in env for name in RANK_VARIABLES) or not is_slurm_task(env):
        return {}
    for name in ("SLURM_LOCALID", "SLURM_JOB_NODELIST"):
        if name not in env and not (name == "SLURM_JOB_NODELIST" and "MASTER_ADDR" in env):
            raise UserError(f"an srun task without {name}: cannot join the other tasks")
    job = env.get("SLURM_JOB_ID", "")
    port = SLURM_PORT_BASE + int(job) % SLURM_PORT_BASE if job.isdigit() else SLURM_DEFAULT_PORT
    return {
        "RANK": env["SLURM_PROCID"],
        "WORLD_SIZE": env["SLURM_NTASKS"],
        "LOCAL_RANK": env["SLURM_LOCALID"],
        "MASTER_ADDR": env.get("MASTER_ADDR") or first_host(env["SLURM_JOB_NODELIST"]),
        "MASTER_PORT": env.get("MASTER_PORT") or str(port),
    }


def first_host(nodelist: str) -> str:
    """The first host of a SLURM host list: "gpu[07-09,12],cpu1" -> "gpu07"."""
    depth, end = 0, len(nodelist)
    for i, char in enumerate(nodelist):
        depth += {"[": 1, "]": -1}.get(char, 0)
        if char == "," and depth == 0:
            end = i
            break
    first = re.sub(r"\[([^\]]*)\]", lambda m: re.split(r"[,-]", m.group(1))[0], nodelist[:end])
    if not first or "[" in first or "]" in first:
        raise UserError(f"cannot read the first host of SLURM_JOB_NODELIST={nodelist!r}")
    return first


# -- the launcher ------------------------------------------------------------------------------
@dataclass
class LaunchResult:
    code: int  # the launcher's exit code
    failure: str | None  # one line: which worker failed and its error (None: no failure)
    details: list[str]  # the failed worker's last lines, when the user has not seen them


def kill_after() -> float:
    """Seconds a failed run's other workers get to end before SIGKILL (HEROFORGE_KILL_AFTER_MIN)."""
    text = os.environ.get(KILL_AFTER_ENV, str(KILL_AFTER_MIN))
    try:
        minutes = float(text)
    except ValueError:
        minutes = -1.0
    if not 0 <= minutes < float("inf"):
        raise UserError(f"{KILL_AFTER_ENV} must be a number of minutes >= 0, got {text!r}")
    return minutes * 60


def free_port() -> int:
    """A TCP port free on this machine now, for rank 0's rendezvous."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def worker_env(env: Mapping[str, str], rank: int, nprocs: int, port: int) -> dict[str, str]:
    """What worker `rank` of nprocs runs with: the rendezvous and its place, as torchrun's."""
    cores = max(1, (os.cpu_count() or 1) // nprocs)
    return {
        **env,
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(port),
        "RANK": str(rank),
        "LOCAL_RANK": str(rank),
        "WORLD_SIZE": str(nprocs),
        "LOCAL_WORLD_SIZE": str(nprocs),
        # each worker's share of the cores, unless the user chose: N processes with a thread
        # per core each would make N threads wait for every core
        "OMP_NUM_THREADS": env.get("OMP_NUM_THREADS", str(cores)),
        "PYTHONUNBUFFERED": "1",  # lines arrive as they are printed, for the relay and the tail
    }


def run_workers(command: list[str], nprocs: int) -> LaunchResult:
    """Run `command` (argv, e.g. [python, -m, heroforge, train, ...]) as nprocs workers until
    all have ended; see the module's docstring for signals, failures and output."""
    if not hasattr(os, "pidfd_open"):
        raise UserError("starting the workers needs Linux; use torchrun on this system")
    grace = kill_after()
    with tempfile.TemporaryDirectory(prefix="heroforge-workers-") as logs:
        group = _Workers(command, nprocs, Path(logs))
        previous = {s: signal.signal(s, group.forward) for s in STOP_SIGNALS}
        group.stop_signal = received()  # one that came while this process started
        try:
            group.start()
            group.wait(grace)
        finally:
            group.kill_all()  # only if starting failed half way or the wait itself failed
            for s, handler in previous.items():
                signal.signal(s, handler)
        return group.result()


class _Workers:
    def __init__(self, command: list[str], nprocs: int, logs: Path) -> None:
        self.command = command
        self.nprocs = nprocs
        self.logs = [logs / f"rank{rank}.log" for rank in range(nprocs)]
        self.procs: list[subprocess.Popen[bytes]] = []
        self.tails = [collections.deque[str](maxlen=TAIL_LINES) for _ in range(nprocs)]
        self.relays: list[threading.Thread] = []
        self.first_failed: int | None = None
        self.stop_signal: int | None = None  # the last stop signal the launcher received

    def start(self) -> None:
        port = free_port()
        for rank in range(self.nprocs):
            with open(self.logs[rank], "wb") as log:
                self.procs.append(
                    subprocess.Popen(
                        self.command,
                        env=worker_env(os.environ, rank, self.nprocs, port),
                        stdin=subprocess.DEVNULL,
                        stdout=None if rank == 0 else log,  # rank 0's stdout: as it is
                        stderr=log,
                        preexec_fn=die_with_parent,  # safe: no relay thread runs yet
                    )
                )
        if self.stop_signal is not None:  # arrived while the workers were being started
            self.forward(self.stop_signal, None)
        for rank in range(self.nprocs):
            relay = threading.Thread(target=self._relay, args=(rank,), daemon=True)
            relay.start()
            self.relays.append(relay)

    def _relay(self, rank: int) -> None:
        """Follow a worker's log file as it grows (rank 0's onto stderr) until it has ended
        and every line is read."""
        pending = b""
        with open(self.logs[rank], "rb") as log:
            while True:
                ended = self.procs[rank].poll() is not None  # before reading: nothing is missed
                chunk = log.read()
                if not chunk and ended:
                    break
                if not chunk:
                    time.sleep(0.05)
                    continue
                *lines, pending = (pending + chunk).split(b"\n")
                for raw in lines:
                    self._line(rank, raw.decode("utf-8", "replace"))
        if pending:
            self._line(rank, pending.decode("utf-8", "replace"))

    def _line(self, rank: int, line: str) -> None:
        self.tails[rank].append(line)
        if rank == 0:
            sys.stderr.write(line + "\n")
            sys.stderr.flush()

    def forward(self, signum: int, _frame: object) -> None:
        self.stop_signal = signum
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signum)

    def wait(self, grace: float) -> None:
        """Wait until every worker ended. pidfds tell which one ended first, to the
        microsecond: the first failure is the cause, the others' failures follow from it."""
        live: dict[int, int] = {}
        gone = []  # ended and already reaped (by a relay's poll) before this wait began
        for rank, proc in enumerate(self.procs):
            try:
                live[os.pidfd_open(proc.pid)] = rank
            except ProcessLookupError:
                gone.append(rank)
        poller = select.poll()
        for fd in live:
            poller.register(fd, select.POLLIN)
        kill_at: float | None = None

        def ended(rank: int) -> None:
            nonlocal kill_at
            code = self.procs[rank].wait()
            if self._failed(code) and self.first_failed is None:
                self.first_failed = rank
                for other in live.values():
                    self.procs[other].terminate()
                kill_at = time.monotonic() + grace

        for rank in gone:
            ended(rank)
        while live:
            timeout = None if kill_at is None else max(0.0, kill_at - time.monotonic()) * 1000
            ready = poller.poll(timeout)  # signal handlers run meanwhile (PEP 475)
            if not ready:  # the failed run's others did not end in time
                for rank in live.values():
                    self.procs[rank].kill()
                kill_at = None
            for fd, _event in ready:
                rank = live.pop(fd)
                poller.unregister(fd)
                os.close(fd)
                ended(rank)

    def _failed(self, code: int) -> bool:
        """Neither finished, nor stopped with a checkpoint, nor ended by the stop signal
        forwarded to it (before its trainer was ready to checkpoint: nothing to save yet)."""
        stop = self.stop_signal
        stopped = stop is not None and code in (-stop, 128 + stop)
        return code not in (0, EXIT_RESUMABLE) and not stopped

    def kill_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    def result(self) -> LaunchResult:
        for relay in self.relays:
            # a grandchild that inherited a pipe may hold it open after its worker ended
            relay.join(timeout=5)
        codes = [proc.returncode for proc in self.procs]
        rank = self.first_failed
        if rank is None:
            if all(code in (0, EXIT_RESUMABLE) for code in codes):
                return LaunchResult(EXIT_RESUMABLE if EXIT_RESUMABLE in codes else 0, None, [])
            return LaunchResult(128 + (self.stop_signal or 0), None, [])  # stopped while starting
        code = codes[rank]
        how = f"exit code {code}" if code > 0 else f"killed by {_signal_name(-code)}"
        failure = f"worker {rank} of {self.nprocs} failed ({how}): {error_line(self.tails[rank])}"
        details = [] if rank == 0 else [f"[rank {rank}] {line}" for line in self.tails[rank]]
        return LaunchResult(code if code > 0 else 128 - code, failure, details)


def error_line(lines: collections.abc.Iterable[str]) -> str:
    """The line that says why a worker failed: its heroforge error, else the last line of a
    Python traceback (what torch prints at exit may follow it), else its last line. torch
    prefixes a traceback's lines with "[rankN]:" once a process group exists."""
    lines = [re.sub(r"^\[rank\d+\]:", "", line).strip() for line in lines]
    lines = [line for line in lines if line]
    for line in reversed(lines):
        if line.startswith("heroforge: error: "):
            return line.removeprefix("heroforge: error: ")
    for line in reversed(lines):
        if re.match(r"^[A-Za-z_][\w.]*(Error|Exception|Interrupt|Exit)\b", line):
            return line
    return lines[-1] if lines else "no output"


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def die_with_parent() -> None:
    """In the worker before it runs: SIGTERM when the launcher dies, so that an orphan
    checkpoints and stops instead of training on unwatched (Linux; elsewhere nothing)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
