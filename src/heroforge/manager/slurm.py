"""`heroforge manager slurm`: hand a training job to SLURM instead of our own supervisor.

Users who outgrow one machine have a cluster scheduler already; what it needs from us is a
batch script that starts or resumes the run, checkpoints on the preemption signal, and asks to
be requeued while the run is unfinished. The script is plain bash (no submitit needed):
- the first start trains from scratch; any later start resumes the run folder it finds;
- `--signal=B:TERM@120` gives the trainer two minutes to finish its step and checkpoint;
- the job requeues itself with `scontrol requeue` when the run folder's ending record
  (rundir.ENDING) says the trainer stopped cleanly, or the exit code is 75: torchrun exits 1
  after such a stop, so the code alone would leave multi-GPU jobs unfinished;
- several GPUs on one node start through heroforge's own launcher (`train` starts train.gpus
  workers and forwards the stop signal to them); several nodes through torchrun with the c10d
  rendezvous on the first node, whose name is also exported as MASTER_ADDR (with MASTER_PORT).
  The stop signal then goes to the job's tasks (scancel --signal), not to srun, which would
  cancel the step and kill the workers mid-checkpoint.
The job asks for GPUs unless `cpu_only`: heroforge cannot see from the login node what the
compute nodes hold, and a CPU job that silently lands on a GPU cluster trains for days on CPUs,
while a GPU request on a CPU-only cluster is refused by sbatch at once.
"""

from __future__ import annotations

import json
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from heroforge import rundir
from heroforge.errors import EXIT_RESUMABLE, UserError, write_failure
from heroforge.fileio import atomic_write_text
from heroforge.manager.spec import JobSpec
from heroforge.runtime.launch import SLURM_PORT_BASE

SIGNAL_LEAD_S = 120  # seconds of notice before SLURM's time limit or preemption
CPUS_PER_PROCESS = 4  # the training process and 3 data loader workers, the official default
MEM_GB_PER_PROCESS = 16  # host memory per training process: a 512 px run with its loaders
STOPPED = json.dumps({"how": "stopped"})[1:-1]  # the ending record's text for a clean stop


@dataclass(frozen=True)
class SlurmResources:
    nodes: int = 1
    time_limit: str = "24:00:00"  # per attempt; a requeued job starts with a fresh one
    cpu_only: bool = False  # ask for no GPUs: train.gpus counts CPU processes
    cpus_per_task: int | None = None  # per node; None: CPUS_PER_PROCESS per process
    mem: str | None = None  # per node, in SLURM's units (64G); None: MEM_GB_PER_PROCESS each

    def check(self, gpus: int) -> None:
        if self.nodes < 1:
            raise UserError(f"--nodes must be >= 1, not {self.nodes}")
        if gpus % self.nodes:
            raise UserError(f"train.gpus = {gpus} does not split over {self.nodes} nodes")
        if self.cpus_per_task is not None and self.cpus_per_task < 1:
            raise UserError(f"--cpus-per-task must be >= 1, not {self.cpus_per_task}")
        if self.mem is not None and not _is_memory(self.mem):
            raise UserError(f"--mem must be a size such as 64G or 500M, not {self.mem!r}")


def _is_memory(text: str) -> bool:
    digits = text[:-1] if text[-1:].upper() in ("K", "M", "G", "T") else text
    return digits.isdigit()


def sbatch_text(spec: JobSpec, folder: Path, res: SlurmResources) -> str:
    gpus = spec.cfg.train.gpus
    res.check(gpus)
    per_node = gpus // res.nodes
    q = shlex.quote
    python = q(sys.executable)
    if res.nodes > 1:
        # one torchrun per node; the stop signal goes to the steps' tasks (torchrun), never to
        # srun itself, which would cancel the step and kill the workers mid-checkpoint
        launch = (
            f"srun --kill-on-bad-exit=1 {python} -m torch.distributed.run --nnodes {res.nodes} "
            f"--nproc_per_node {per_node} --rdzv_backend c10d "
            f'--rdzv_endpoint "$MASTER_ADDR:$MASTER_PORT" --rdzv_id "${{SLURM_JOB_ID:-0}}" '
            "-m heroforge"
        )
        stop = 'scancel --signal=TERM "$SLURM_JOB_ID"'
    else:
        # one node: heroforge starts its train.gpus workers itself and forwards the signal
        launch = f"{python} -m heroforge"
        stop = 'kill -TERM "$child"'
    gpu_line = "" if res.cpu_only else f"#SBATCH --gpus-per-node={per_node}\n"
    cpus = res.cpus_per_task or CPUS_PER_PROCESS * per_node
    mem = res.mem or f"{MEM_GB_PER_PROCESS * per_node}G"
    ending = f'"$run_dir/{rundir.ENDING}"'
    return f"""#!/usr/bin/env bash
# heroforge training job for SLURM (written by `heroforge manager slurm`): sbatch this file.
#SBATCH --job-name={q(spec.name)}
#SBATCH --nodes={res.nodes}
#SBATCH --ntasks-per-node=1
{gpu_line}#SBATCH --cpus-per-task={cpus}
#SBATCH --mem={mem}
#SBATCH --time={res.time_limit}
#SBATCH --requeue
#SBATCH --signal=B:TERM@{SIGNAL_LEAD_S}
#SBATCH --open-mode=append
#SBATCH --output={q(str(folder / "slurm-%j.out"))}
set -uo pipefail
folder={q(str(folder))}
find_run() {{
    run_dir=""
    for d in "$folder"/runs/*/; do [ -f "$d/{rundir.RUN_JSON}" ] && run_dir="$d"; done
}}
find_run
if [ -n "$run_dir" ]; then
    rm -f {ending}  # the record read below must be this attempt's
    args=(train --resume "$run_dir" --gpus {gpus} --kimg {spec.target_kimg!r})
else
    args=(train --data {q(str(spec.data))} --preset "$folder/config.toml" \\
          --outdir "$folder/runs" --kimg {spec.target_kimg!r})
fi
head=$(scontrol show hostnames "${{SLURM_JOB_NODELIST:-localhost}}" 2>/dev/null | head -n 1)
export MASTER_ADDR=${{head:-localhost}}
port=$(({SLURM_PORT_BASE} + ${{SLURM_JOB_ID:-0}} % {SLURM_PORT_BASE}))  # a port per job
export MASTER_PORT=${{MASTER_PORT:-$port}}
# torchrun waits this long for its workers' stop checkpoint (its default, 30 s, is too short)
export TORCH_ELASTIC_SHUTDOWN_TIMEOUT=${{TORCH_ELASTIC_SHUTDOWN_TIMEOUT:-3600}}
{launch} "${{args[@]}}" &
child=$!
trap '{stop} 2>/dev/null' TERM INT
wait "$child"; code=$?
while kill -0 "$child" 2>/dev/null; do wait "$child"; code=$?; done  # still checkpointing
find_run
stopped=no  # a clean stop says so in the run folder: torchrun exits 1 after one
[ -n "$run_dir" ] && grep -qF {q(STOPPED)} {ending} 2>/dev/null && stopped=yes
if [ "$code" -eq {EXIT_RESUMABLE} ] || [ "$stopped" = yes ]; then
    code={EXIT_RESUMABLE}
    if [ -n "${{SLURM_JOB_ID:-}}" ]; then
        scontrol requeue "$SLURM_JOB_ID"
    fi
fi
exit "$code"
"""


def write_sbatch(spec: JobSpec, folder: Path, res: SlurmResources) -> Path:
    """Freeze the config next to the script (like a queued job) and write the script."""
    folder = folder.expanduser().resolve()
    text = sbatch_text(spec, folder, res)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(folder / "config.toml", spec.cfg.to_toml())
        atomic_write_text(folder / "job.sbatch", text)
        (folder / "job.sbatch").chmod(0o755)
    except OSError as err:
        raise write_failure(f"cannot write the SLURM job into {folder}", err) from None
    return folder / "job.sbatch"
