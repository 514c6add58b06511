"""`heroforge manager slurm`: hand a training job to SLURM instead of our own supervisor.

Users who outgrow one machine have a cluster scheduler already; what it needs from us is a
batch script that starts or resumes the run, checkpoints on the preemption signal, and asks to
be requeued while the run is unfinished. The script is plain bash (no submitit needed):
- the first start trains from scratch; any later start resumes the run folder it finds;
- `--signal=B:TERM@120` gives the trainer two minutes to finish its step and checkpoint;
- exit code 75 ("interrupted, resumable") requeues the job with `scontrol requeue`;
- several GPUs or nodes start through torchrun with the c10d rendezvous on the first node.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from heroforge.errors import UserError, write_failure
from heroforge.fileio import atomic_write_text
from heroforge.manager.spec import JobSpec

RENDEZVOUS_PORT = 29500
SIGNAL_LEAD_S = 120  # seconds of notice before SLURM's time limit or preemption


def sbatch_text(spec: JobSpec, folder: Path, nodes: int, time_limit: str) -> str:
    gpus = spec.cfg.train.gpus
    if gpus % nodes:
        raise UserError(f"train.gpus = {gpus} does not split over {nodes} nodes")
    per_node = gpus // nodes
    q = shlex.quote
    python = q(sys.executable)
    if gpus > 1:
        launch = (
            f"srun --kill-on-bad-exit=1 {python} -m torch.distributed.run --nnodes {nodes} "
            f"--nproc_per_node {per_node} --rdzv_backend c10d "
            f'--rdzv_endpoint "$head:{RENDEZVOUS_PORT}" --rdzv_id "${{SLURM_JOB_ID:-0}}" '
            "-m heroforge"
        )
    else:
        launch = f"{python} -m heroforge"
    gpu_line = f"#SBATCH --gpus-per-node={per_node}\n" if gpus > 1 else ""
    return f"""#!/usr/bin/env bash
# heroforge training job for SLURM (written by `heroforge manager slurm`): sbatch this file.
#SBATCH --job-name={q(spec.name)}
#SBATCH --nodes={nodes}
#SBATCH --ntasks-per-node=1
{gpu_line}#SBATCH --time={time_limit}
#SBATCH --requeue
#SBATCH --signal=B:TERM@{SIGNAL_LEAD_S}
#SBATCH --open-mode=append
#SBATCH --output={q(str(folder / "slurm-%j.out"))}
set -uo pipefail
folder={q(str(folder))}
run_dir=""
for d in "$folder"/runs/*/; do [ -f "$d/run.json" ] && run_dir="$d"; done
if [ -n "$run_dir" ]; then
    args=(train --resume "$run_dir" --kimg {spec.target_kimg!r})
else
    args=(train --data {q(str(spec.data))} --preset "$folder/config.toml" \\
          --outdir "$folder/runs" --kimg {spec.target_kimg!r})
fi
head=$(scontrol show hostnames "${{SLURM_JOB_NODELIST:-localhost}}" 2>/dev/null | head -n 1)
head=${{head:-localhost}}
{launch} "${{args[@]}}" &
child=$!
trap 'kill -TERM "$child" 2>/dev/null' TERM INT
wait "$child"; code=$?
while kill -0 "$child" 2>/dev/null; do wait "$child"; code=$?; done  # still checkpointing
if [ "$code" -eq 75 ] && [ -n "${{SLURM_JOB_ID:-}}" ]; then
    scontrol requeue "$SLURM_JOB_ID"
fi
exit "$code"
"""


def write_sbatch(spec: JobSpec, folder: Path, nodes: int, time_limit: str) -> Path:
    """Freeze the config next to the script (like a queued job) and write the script."""
    if nodes < 1:
        raise UserError(f"--nodes must be >= 1, not {nodes}")
    folder = folder.expanduser().resolve()
    text = sbatch_text(spec, folder, nodes, time_limit)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(folder / "config.toml", spec.cfg.to_toml())
        atomic_write_text(folder / "job.sbatch", text)
        (folder / "job.sbatch").chmod(0o755)
    except OSError as err:
        raise write_failure(f"cannot write the SLURM job into {folder}", err) from None
    return folder / "job.sbatch"
