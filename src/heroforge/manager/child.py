"""Starting and stopping the training process of a job.

The child is `heroforge train` (which starts one worker per GPU itself) in its own
session, so a Ctrl-C in the supervisor's terminal reaches only the supervisor, which then asks
the child to checkpoint. On Linux the child also gets SIGTERM when the supervisor dies (even by
kill -9), so an orphan checkpoints and exits instead of training on unsupervised. The job's
lock file descriptor is inherited: the lock is held until the last of them exits, so a new
supervisor cannot start a second trainer on the same run folder while an orphan still writes.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from heroforge.runtime.launch import die_with_parent


def train_command(
    gpus: int,
    run_dir: Path | None,
    data: str,
    config: Path,
    outdir: Path,
    target_kimg: float,
    follow_data: bool = False,
) -> list[str]:
    """The command that starts (no run folder yet) or resumes the job's training; follow_data
    resumes on the data file as it is now, whatever the run started on."""
    # with gpus > 1, `heroforge train` starts its workers itself (runtime/launch.py) and waits
    # for their stop checkpoint however long it takes (torchrun kills them after 30 s)
    launcher = [sys.executable, "-m", "heroforge", "train"]
    kimg = ["--kimg", repr(float(target_kimg))]
    if run_dir is not None:
        force = ["--force"] if follow_data else []
        return [*launcher, "--resume", str(run_dir), "--gpus", str(gpus), *kimg, *force]
    return [*launcher, "--data", data, "--preset", str(config), "--outdir", str(outdir), *kimg]


def start_child(
    command: list[str], log_path: Path, lock_fd: int, env_changes: Mapping[str, str]
) -> subprocess.Popen:
    env = {**os.environ, **env_changes, "PYTHONUNBUFFERED": "1"}
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            pass_fds=(lock_fd,),
            preexec_fn=die_with_parent,
        )


def stop_child(child: subprocess.Popen, timeout_s: float) -> int:
    """SIGTERM (the trainer finishes its step and checkpoints), then SIGKILL after timeout_s to
    the child's whole process group: its session, started for it alone, also holds the workers
    of a run on several GPUs, which must not train on beside the next attempt."""
    if child.poll() is None:
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)
            child.wait()
    return child.returncode


def lock_job(job_dir: Path) -> int | None:
    """An exclusive lock on the job folder: an fd, or None while another process holds it."""
    fd = os.open(job_dir / "lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def last_error_line(log_path: Path, max_bytes: int = 8192) -> str:
    """The most telling line at the end of a log: a heroforge error if there is one."""
    try:
        with open(log_path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - max_bytes))
            lines = f.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return ""
    lines = [line.strip() for line in lines if line.strip() and not line.startswith("==")]
    errors = [line for line in lines if "error" in line.lower()]
    return (errors or lines or [""])[-1][:300]


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
