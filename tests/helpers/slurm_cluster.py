"""A private one-node SLURM cluster on localhost, CPU only, for the tests of `manager slurm`.

`make test` installs Debian's slurm-wlm and munge where it runs as root with apt-get. The
cluster runs as root because slurmd starts every job as the user who submitted it. Everything
it writes (munge key and socket, slurm.conf, spool and state) lives in one temporary folder,
on ports of its own, so it neither needs nor disturbs a system SLURM, and two pytest workers
can each run one. The node declares two count-only GPUs (no device files) so that scripts
asking for `--gpus-per-node` are accepted; the jobs train on the CPU.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("munge", "sbatch", "scontrol", "scancel", "sinfo", "squeue")
SBIN_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
START_TIMEOUT_S = 60
COMMAND_TIMEOUT_S = 60
STAND_IN_GPUS = "/dev/null,/dev/zero"


def unavailable_reason() -> str | None:
    """Why no cluster can start here (None where one can)."""
    missing = [name for name in (*DAEMONS, *CLIENTS) if not shutil.which(name, path=SBIN_PATH)]
    if missing:
        return (
            f"SLURM is not installed here (no {', '.join(missing)}); `make test` installs "
            "Debian's slurm-wlm and munge where it runs as root with apt-get"
        )
    if os.geteuid() != 0:
        return "a private SLURM cluster needs root: slurmd starts each job as its user"
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def node_hardware() -> dict[str, str]:
    """What `slurmd -C` finds on this machine: NodeName (the short host name), CPUs, Boards,
    SocketsPerBoard, CoresPerSocket, ThreadsPerCore, RealMemory."""
    out = subprocess.run(
        ["slurmd", "-C"], capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S,
        env={**os.environ, "PATH": SBIN_PATH}, check=True,
    ).stdout  # fmt: skip
    first = out.splitlines()[0]
    return dict(field.split("=", 1) for field in first.split())


class SlurmCluster:
    """munged, slurmctld and slurmd started as child processes; stop() ends them."""

    def __init__(self) -> None:
        # munged wants every folder on its socket's path searchable by all (pytest's
        # tmp_path is not), and a socket path must stay short: a folder of our own in /tmp.
        self.folder = Path(tempfile.mkdtemp(prefix="heroforge-slurm-"))
        self.folder.chmod(0o755)
        self.conf = self.folder / "slurm.conf"
        self.munge_socket = self.folder / "munge.sock"
        self.processes: dict[str, subprocess.Popen] = {}
        self.node = ""

    @property
    def env(self) -> dict[str, str]:
        """The environment for clients and for jobs (sbatch passes it on): no SLURM settings
        from an outer cluster, ours in SLURM_CONF; one torch thread per process."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
        env.update(
            SLURM_CONF=str(self.conf), PATH=SBIN_PATH, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1"
        )
        return env

    def start(self) -> None:
        try:
            self._start_munge()
            self._write_conf()
            self._daemon("slurmctld", ["slurmctld", "-D", "-i"])
            self._daemon("slurmd", ["slurmd", "-D", "-N", self.node])
            self.wait_for(self._node_idle, START_TIMEOUT_S, "the node idle")
        except BaseException:
            self.stop()
            raise

    def _start_munge(self) -> None:
        key = self.folder / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        self._daemon(
            "munged",
            ["munged", "--foreground", f"--key-file={key}", f"--socket={self.munge_socket}",
             f"--pid-file={self.folder / 'munged.pid'}", f"--seed-file={self.folder / 'seed'}",
             f"--log-file={self.folder / 'munged-file.log'}"],
        )  # fmt: skip
        self.wait_for(self.munge_socket.exists, START_TIMEOUT_S, "munged's socket")

    def _write_conf(self) -> None:
        hw = node_hardware()
        self.node = hw.pop("NodeName")
        hardware = " ".join(
            f"{k}={hw[k]}"
            for k in ("CPUs", "Boards", "SocketsPerBoard", "CoresPerSocket", "ThreadsPerCore")
        )
        f = self.folder
        (f / "spool").mkdir()
        (f / "state").mkdir()
        # SLURM counts a GPU only with a device file; two harmless ones stand in (no cgroups
        # here, so SLURM never restricts access to them)
        (f / "gres.conf").write_text(f"NodeName={self.node} Name=gpu File={STAND_IN_GPUS}\n")
        self.conf.write_text(f"""\
ClusterName=heroforge-test
SlurmctldHost=localhost
SlurmctldPort={free_port()}
SlurmdPort={free_port()}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# a requeued job waits cred_expire seconds (120 by default) before it may start again
AuthInfo=socket={self.munge_socket},cred_expire=5
# look at pending jobs every second, not every minute
SchedulerParameters=sched_interval=1,bf_interval=1
StateSaveLocation={f / "state"}
SlurmdSpoolDir={f / "spool"}
SlurmctldPidFile={f / "slurmctld.pid"}
SlurmdPidFile={f / "slurmd.pid"}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
MpiDefault=none
SwitchType=switch/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobRequeue=1
ReturnToService=2
GresTypes=gpu
NodeName={self.node} NodeAddr=127.0.0.1 {hardware} RealMemory={hw["RealMemory"]} \
Gres=gpu:2 State=UNKNOWN
PartitionName=test Nodes={self.node} Default=YES MaxTime=INFINITE State=UP
""")

    def _daemon(self, name: str, argv: list[str]) -> None:
        log = open(self.folder / f"{name}.log", "wb")  # noqa: SIM115 (the child holds it)
        self.processes[name] = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True
        )
        log.close()

    def run(self, *argv: str) -> str:
        """A SLURM client command against this cluster; its stdout."""
        done = subprocess.run(
            argv, capture_output=True, text=True, env=self.env, timeout=COMMAND_TIMEOUT_S
        )
        if done.returncode:
            raise AssertionError(
                f"{' '.join(argv)} exited {done.returncode}: {done.stderr.strip()}\n{self.logs()}"
            )
        return done.stdout

    def sbatch(self, script: Path, *options: str) -> int:
        """Submit script; the job's number."""
        return int(self.run("sbatch", "--parsable", *options, str(script)).split(";")[0])

    def job(self, job_id: int) -> dict[str, str]:
        """`scontrol show job` as FIELD: value (JobState, Restarts, ExitCode, Reason, ...)."""
        line = self.run("scontrol", "--oneliner", "show", "job", str(job_id))
        return dict(f.split("=", 1) for f in line.split() if "=" in f)

    def _node_idle(self) -> bool:
        state = self.node_state()
        if "drain" in state or "inval" in state:  # slurmctld refused the node: no use waiting
            raise AssertionError(f"the node is {state}\n{self.logs()}")
        return state == "idle"

    def node_state(self) -> str:
        done = subprocess.run(
            ["sinfo", "--noheader", "--Node", "--format=%T"],
            capture_output=True, text=True, env=self.env, timeout=COMMAND_TIMEOUT_S,
        )  # fmt: skip
        return done.stdout.strip()

    def wait_for(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            exited = {n: p.returncode for n, p in self.processes.items() if p.poll() is not None}
            if exited or time.monotonic() > deadline:
                because = f"daemons exited {exited}" if exited else f"{timeout:.0f} s passed"
                raise AssertionError(f"waiting for {what}: {because}\n{self.logs()}")
            time.sleep(0.2)

    def logs(self) -> str:
        """The daemons' logs, for a failure message."""
        parts = [f"--- {p.name}\n{p.read_text(errors='replace')[-6000:]}"
                 for p in sorted(self.folder.glob("*.log"))]  # fmt: skip
        return "\n".join(parts)

    def stop(self) -> None:
        """Cancel what still runs, end the daemons (last started first), remove the folder."""
        try:
            if "slurmd" in self.processes:
                self._cancel_jobs()
        finally:
            self._end_daemons()
            shutil.rmtree(self.folder, ignore_errors=True)

    def _cancel_jobs(self) -> None:
        jobs = self.run("squeue", "--noheader", "--format=%i").split()
        if jobs:
            self.run("scancel", *jobs)
            self.wait_for(lambda: not self.run("squeue", "--noheader").strip(),
                          START_TIMEOUT_S, "the cancelled jobs to end")  # fmt: skip

    def _end_daemons(self) -> None:
        for process in reversed(self.processes.values()):
            process.terminate()
            try:
                process.wait(timeout=COMMAND_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
