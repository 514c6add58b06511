"""`heroforge queue ...` and `heroforge manager ...`: the training queue and its supervisor."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from heroforge.commands.base import add_command
from heroforge.console import console
from heroforge.errors import UserError

if TYPE_CHECKING:
    from heroforge.manager.queue import Job, Queue

Root = Annotated[
    Path | None,
    typer.Option(
        "--root",
        help="Manager folder with the queue and jobs (default: $HEROFORGE_ROOT or ~/.heroforge).",
    ),
]
# options that describe a training job, shared by `queue submit` and `manager slurm`
Preset = Annotated[str, typer.Option(help="Config preset or .toml file.")]
Kimg = Annotated[float | None, typer.Option(help="Target kimg (default: cycles x cycle_kimg).")]
Overrides = Annotated[
    list[str] | None, typer.Option("--set", help="Override: SECTION.KEY=VALUE (repeatable).")
]
JobId = Annotated[int, typer.Argument(help="Job number (see `heroforge queue list`).")]


def listed_jobs(root: Path | None, include_final: bool, as_json: bool) -> list | None:
    """The jobs, for the listing commands (`queue list`, `status`); None (said, or [] in JSON)
    where no queue is yet: an empty listing, but with the folder named, so that a mistyped
    --root shows."""
    from heroforge.manager import has_queue, root_folder

    if has_queue(root):
        return _queue(root).jobs(include_final=include_final)
    if as_json:
        print("[]")
    else:
        console.print(
            f"no queue at {root_folder(root)} yet: nothing was submitted there", markup=False
        )
    return None


def _queue(root: Path | None, create: bool = False) -> Queue:
    """The queue; only submitting and supervising create one."""
    from heroforge.manager import open_queue

    return open_queue(root, create)


# -- queue ----------------------------------------------------------------------------------
SUBMIT_EPILOG = (
    "Examples:\n\n"
    "  heroforge queue submit --data heroes.zip --preset superheroes-512\n\n"
    "  heroforge queue submit --data heroes.zip --preset superheroes-512 --kimg 25000 "
    "--set job.priority=5\n\n"
    "  heroforge queue submit job.toml      (keys: data, preset, kimg, set)"
)


def submit_command(
    spec_file: Annotated[
        Path | None, typer.Argument(help="Job spec TOML (data, preset, kimg, set).")
    ] = None,
    data: Annotated[Path | None, typer.Option(help="Training archive (.zip) or folder.")] = None,
    preset: Preset = "superheroes-512",
    kimg: Kimg = None,
    overrides: Overrides = None,
    allow_duplicate: Annotated[
        bool, typer.Option(help="Queue it even if an unfinished job is the same.")
    ] = False,
    root: Root = None,
) -> None:
    """Check a training job completely (config, data) and add it to the queue."""
    from heroforge.manager import submit
    from heroforge.manager.spec import read_spec, spec_from_options

    if spec_file is not None:
        if data is not None or overrides or kimg is not None or preset != "superheroes-512":
            raise UserError("give either a spec file or --data/--preset/--kimg/--set, not both")
        spec = read_spec(spec_file)
    elif data is None:
        raise UserError("give a job spec file or --data (see heroforge queue submit --help)")
    else:
        spec = spec_from_options(data, preset, kimg, list(overrides or []))
    job = submit(_queue(root, create=True), spec, allow_duplicate)
    console.print(
        f"queued job {job.id} ({job.name}): {job.target_kimg:g} kimg on {job.gpus} "
        f"{'GPU' if job.gpus == 1 else 'GPUs'}, folder {job.job_dir}",
        markup=False,
        highlight=False,
    )


def list_command(
    root: Root = None,
    all_jobs: Annotated[
        bool, typer.Option("--all/--active", help="Also finished jobs, or only unfinished ones.")
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="JSON for scripts.")] = False,
) -> None:
    """The jobs, one line each."""
    from heroforge.manager.status import jobs_table, strict_json, summary

    jobs = listed_jobs(root, all_jobs, as_json)
    if jobs is None:
        return
    if as_json:
        print(strict_json([summary(j) for j in jobs]))
    elif not jobs:
        console.print("the queue is empty (heroforge queue submit --help)")
    else:
        console.print(jobs_table(jobs))


def show_command(job_id: JobId, root: Root = None) -> None:
    """Everything about one job (JSON): settings, progress, and its history of events."""
    from heroforge.manager.status import strict_json, summary

    queue = _queue(root)
    job = queue.get(job_id)
    print(strict_json({**summary(job), "events": queue.events(job_id)}))


def cancel_command(job_id: JobId, root: Root = None) -> None:
    """Cancel a job (a running one checkpoints first; its run folder stays)."""
    _say_state(_queue(root).cancel(job_id), "cancel")


def pause_command(job_id: JobId, root: Root = None) -> None:
    """Keep a job aside (a running one checkpoints and stops) until `queue resume`."""
    _say_state(_queue(root).pause(job_id), "pause")


def resume_command(job_id: JobId, root: Root = None) -> None:
    """Put a paused job back in the queue."""
    _say_state(_queue(root).resume(job_id), None)


def retry_command(job_id: JobId, root: Root = None) -> None:
    """Put a failed job back in the queue: it goes on in its own folder from its newest good
    checkpoint, its failure count cleared."""
    _say_state(_queue(root).retry(job_id), None)


def priority_command(
    job_id: JobId,
    priority: Annotated[int, typer.Argument(help="Higher runs first.")],
    root: Root = None,
) -> None:
    """Change a job's priority (used the next time a supervisor picks a job)."""
    job = _queue(root).set_priority(job_id, priority)
    console.print(f"job {job.id}: priority {job.priority}")


def _say_state(job: Job, request: str | None) -> None:
    if job.state == "running" and job.request == request and request:
        console.print(f"job {job.id}: {request} requested; its supervisor stops it shortly")
    else:
        console.print(f"job {job.id}: {job.state}")


def logs_command(
    job_id: JobId,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new lines.")
    ] = False,
    root: Root = None,
) -> None:
    """Print what the job's trainer wrote (all attempts); -f follows while the job is active."""
    from heroforge.manager.queue import FINAL_STATES

    queue = _queue(root)
    path = queue.get(job_id).dir / "train.log"
    offset = 0
    while True:
        try:
            with open(path, "rb") as f:
                f.seek(offset)
                chunk = f.read()
        except FileNotFoundError:
            chunk = b""
        if chunk:
            sys.stdout.write(chunk.decode("utf-8", "replace"))
            sys.stdout.flush()
            offset += len(chunk)
        if not follow or queue.get(job_id).state in FINAL_STATES:
            return
        time.sleep(1.0)


# -- manager --------------------------------------------------------------------------------
RUN_EPILOG = (
    "Examples:\n\n"
    "  heroforge manager run                       keep running; Ctrl-C checkpoints and stops\n\n"
    "  heroforge manager run --gpus 8              jobs may use up to 8 GPUs (a process each)\n\n"
    "  heroforge manager run --exit-when-idle      stop when the queue is empty\n\n"
    "  heroforge manager run --cpus 4              its trainers use 4 CPU threads in all\n\n"
    "Exit code 75: stopped on SIGTERM/SIGINT/SIGUSR1 after the running job checkpointed; "
    "starting the supervisor again resumes it first."
)


def run_command(
    root: Root = None,
    gpus: Annotated[int, typer.Option(help="GPUs (CPU processes) a job may use here.")] = 1,
    exit_when_idle: Annotated[
        bool, typer.Option(help="Return when there is nothing left to run.")
    ] = False,
    lease_seconds: Annotated[
        float, typer.Option(help="Another supervisor takes over a job after this much silence.")
    ] = 120.0,
    stop_timeout: Annotated[
        float, typer.Option(help="Seconds a trainer may take to checkpoint when stopped.")
    ] = 300.0,
    cpus: Annotated[
        int | None,
        typer.Option(
            envvar="HEROFORGE_CPUS",
            help="CPU cores (threads) for this supervisor's trainers, split over a job's "
            "processes; give each supervisor on one machine its share (default: "
            "OMP_NUM_THREADS if set, else the cores this process may run on).",
        ),
    ] = None,
) -> None:
    """Train queued jobs one after another, resuming interrupted ones first."""
    from heroforge.manager.supervisor import Supervisor, SupervisorOptions

    if gpus < 1 or lease_seconds <= 0 or stop_timeout <= 0:
        raise UserError("--gpus must be >= 1, --lease-seconds and --stop-timeout positive")
    if cpus is not None and cpus < 1:
        raise UserError(f"--cpus (or HEROFORGE_CPUS) must be 1 or more, got {cpus}")
    options = SupervisorOptions(
        gpus=gpus,
        lease_seconds=lease_seconds,
        exit_when_idle=exit_when_idle,
        stop_timeout_seconds=stop_timeout,
        cpus=cpus,
    )

    def log(message: str) -> None:
        print(message, flush=True)

    code = Supervisor(_queue(root, create=True), options, log).run()
    if code:
        sys.exit(code)


def install_command(
    root: Root = None,
    gpus: Annotated[int, typer.Option(help="Passed to `manager run --gpus`.")] = 1,
    system: Annotated[
        bool, typer.Option(help="A system unit (/etc/systemd/system) instead of a user unit.")
    ] = False,
    out: Annotated[
        Path | None, typer.Option(help="Write the unit here instead of the systemd folder.")
    ] = None,
) -> None:
    """Write a systemd unit that starts the supervisor at boot and restarts it always."""
    from heroforge.manager import root_folder
    from heroforge.manager.install import install_unit

    path, hints = install_unit(root_folder(root), gpus, system, out)
    console.print(f"wrote {path}", markup=False, highlight=False)
    for line in hints:
        console.print(f"  {line}", markup=False, highlight=False)


SLURM_EPILOG = (
    "Example:\n\n  heroforge manager slurm --data heroes.zip --preset superheroes-512 "
    "--nodes 2 --set train.gpus=16 --out jobs/heroes && sbatch jobs/heroes/job.sbatch"
)


def slurm_command(
    data: Annotated[Path, typer.Option(help="Training archive (.zip) or folder.")],
    out: Annotated[Path, typer.Option(help="Folder for the script, config and run.")],
    preset: Preset = "superheroes-512",
    kimg: Kimg = None,
    overrides: Overrides = None,
    nodes: Annotated[int, typer.Option(help="Nodes; train.gpus are split evenly over them.")] = 1,
    time_limit: Annotated[
        str, typer.Option("--time", help="SLURM time limit per attempt.")
    ] = "24:00:00",
    cpu_only: Annotated[
        bool,
        typer.Option(help="Ask for no GPUs (a CPU cluster): train.gpus counts CPU processes."),
    ] = False,
    cpus_per_task: Annotated[
        int | None, typer.Option(help="CPU cores per node (default: 4 per GPU or process).")
    ] = None,
    mem: Annotated[
        str | None, typer.Option(help="Memory per node, e.g. 128G (default: 16G per GPU).")
    ] = None,
) -> None:
    """Write a SLURM batch script that trains the job, checkpoints on preemption and requeues
    itself until the run reaches its target (for clusters, instead of `manager run`)."""
    from heroforge.manager.slurm import SlurmResources, write_sbatch
    from heroforge.manager.spec import fingerprint_data, spec_from_options

    spec = spec_from_options(data, preset, kimg, list(overrides or []))
    res = SlurmResources(nodes, time_limit, cpu_only, cpus_per_task, mem)
    res.check(spec.cfg.train.gpus)  # before the data is read: the quick mistakes first
    fingerprint_data(spec.data, spec.cfg)  # the data must open the way training will open it
    path = write_sbatch(spec, out, res)
    console.print(f"wrote {path}\n  sbatch {path}", markup=False, highlight=False)


def register(app: typer.Typer) -> None:
    queue = typer.Typer(help="Submit and manage training jobs.", no_args_is_help=True)
    add_command(queue, submit_command, "submit", epilog=SUBMIT_EPILOG)
    add_command(queue, list_command, "list")
    add_command(queue, show_command, "show")
    add_command(queue, cancel_command, "cancel")
    add_command(queue, pause_command, "pause")
    add_command(queue, resume_command, "resume")
    add_command(queue, retry_command, "retry")
    add_command(queue, priority_command, "priority")
    # `logs --follow` runs until Ctrl-C: that is its usual end, not an interruption
    add_command(queue, logs_command, "logs", on_interrupt=None)
    app.add_typer(queue, name="queue")

    manager = typer.Typer(help="Run the supervisor that trains queued jobs.", no_args_is_help=True)
    add_command(manager, run_command, "run", epilog=RUN_EPILOG)
    add_command(manager, install_command, "install")
    add_command(manager, slurm_command, "slurm", epilog=SLURM_EPILOG)
    app.add_typer(manager, name="manager")
