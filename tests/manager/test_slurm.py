"""The SLURM batch script starts the run, checkpoints on the preemption signal, resumes, and
requeues itself when the run folder says it stopped cleanly (whatever the launcher's code)."""

import errno
import os
import shlex
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers.training import tick_kimgs
from heroforge import rundir
from heroforge.errors import OperationalError, UserError
from heroforge.manager.slurm import SlurmResources, sbatch_text, write_sbatch
from heroforge.manager.spec import spec_from_options

FAST_JOB = ["train.tick_kimg=0.032", "train.checkpoint_kimg=0.032"]


def _sbatch_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("#SBATCH")]


def test_multi_node_script_uses_torchrun_rendezvous(tiny_archive, tmp_path):
    spec = spec_from_options(tiny_archive, "tiny-cpu", 1.0, ["train.gpus=8", "train.batch=8"])
    text = sbatch_text(spec, tmp_path, SlurmResources(nodes=2, time_limit="12:00:00"))
    lines = _sbatch_lines(text)
    for expected in ("#SBATCH --nodes=2", "#SBATCH --gpus-per-node=4", "#SBATCH --requeue",
                     "#SBATCH --signal=B:TERM@120", "#SBATCH --cpus-per-task=16",
                     "#SBATCH --mem=64G", "#SBATCH --time=12:00:00"):  # fmt: skip
        assert expected in lines
    for expected in ("--nnodes 2 --nproc_per_node 4", "--rdzv_backend c10d",
                     'export MASTER_ADDR=${head:-localhost}', "scontrol requeue"):  # fmt: skip
        assert expected in text
    # the stop goes to the tasks: a TERM to srun itself would cancel the step mid-checkpoint
    assert """trap 'scancel --signal=TERM "$SLURM_JOB_ID" 2>/dev/null' TERM INT""" in text
    assert subprocess.run(["bash", "-n"], input=text.encode()).returncode == 0
    with pytest.raises(UserError, match="does not split over 3 nodes"):
        sbatch_text(spec, tmp_path, SlurmResources(nodes=3))


def test_one_gpu_asks_for_its_gpu_and_a_cpu_job_for_none(tiny_archive, tmp_path):
    one = spec_from_options(tiny_archive, "tiny-cpu", 1.0, [])
    text = sbatch_text(one, tmp_path, SlurmResources())
    assert "#SBATCH --gpus-per-node=1" in _sbatch_lines(text)
    assert "#SBATCH --cpus-per-task=4" in _sbatch_lines(text)
    assert "#SBATCH --mem=16G" in _sbatch_lines(text)
    assert "torch.distributed.run" not in text  # one process needs no launcher
    two = spec_from_options(tiny_archive, "tiny-cpu", 1.0, ["train.gpus=2"])
    cpus = SlurmResources(cpu_only=True, cpus_per_task=8, mem="24G")
    text = sbatch_text(two, tmp_path, cpus)
    assert not [line for line in _sbatch_lines(text) if "--gpu" in line]
    assert "#SBATCH --cpus-per-task=8" in _sbatch_lines(text)
    assert "#SBATCH --mem=24G" in _sbatch_lines(text)
    # one node: heroforge starts its 2 workers itself and is the process the trap signals
    assert "torch.distributed.run" not in text
    assert """trap 'kill -TERM "$child" 2>/dev/null' TERM INT""" in text
    assert subprocess.run(["bash", "-n"], input=text.encode()).returncode == 0


@pytest.mark.parametrize(
    ("res", "message"),
    [
        (SlurmResources(nodes=0), "--nodes must be >= 1"),
        (SlurmResources(cpus_per_task=0), "--cpus-per-task must be >= 1"),
        (SlurmResources(mem="lots"), "--mem must be a size such as 64G"),
        (SlurmResources(mem=""), "--mem must be a size such as 64G"),
    ],
)
def test_impossible_resources_are_refused(tiny_archive, tmp_path, res, message):
    spec = spec_from_options(tiny_archive, "tiny-cpu", 1.0, [])
    with pytest.raises(UserError, match=message):
        sbatch_text(spec, tmp_path, res)


def test_the_command_passes_its_resource_options(cli, tiny_archive, tmp_path):
    code, out, err = cli("manager", "slurm", "--data", str(tiny_archive), "--out",
                         str(tmp_path / "job"), "--preset", "tiny-cpu", "--cpu-only",
                         "--cpus-per-task", "2", "--mem", "3G")  # fmt: skip
    assert code == 0, out + err
    lines = _sbatch_lines((tmp_path / "job" / "job.sbatch").read_text())
    assert "#SBATCH --cpus-per-task=2" in lines
    assert "#SBATCH --mem=3G" in lines
    assert not [line for line in lines if "--gpu" in line]
    code, out, err = cli("manager", "slurm", "--data", str(tiny_archive), "--out",
                         str(tmp_path / "bad"), "--mem", "3 GB")  # fmt: skip
    assert code == 2
    assert "--mem must be a size" in out + err


# Stand-ins for SLURM's commands and the launcher, so that the script's requeue decision runs
# here (a real cluster is tested elsewhere): they note their calls in $CALLS.
FAKE_SCONTROL = """#!/usr/bin/env bash
if [ "$1 $2" = "show hostnames" ]; then printf 'node7\nnode8\n'; exit 0; fi
echo "scontrol $*" >> "$CALLS"
"""
FAKE_SRUN = """#!/usr/bin/env bash
shift  # --kill-on-bad-exit=1
exec "$@"
"""
# the launcher writes the ending record with heroforge's own writer, then exits FAKE_CODE
FAKE_LAUNCHER = """#!/usr/bin/env bash
echo "launch $* MASTER_ADDR=$MASTER_ADDR MASTER_PORT=$MASTER_PORT" >> "$CALLS"
prev="" run=""
for a in "$@"; do [ "$prev" = --resume ] && run="$a"; prev="$a"; done
if [ -n "$FAKE_HOW" ]; then
    "$REAL_PYTHON" -c 'import sys, pathlib; from heroforge import rundir
rundir.write_ending(pathlib.Path(sys.argv[1]), sys.argv[2], 64, None)' "$run" "$FAKE_HOW"
fi
exit "$FAKE_CODE"
"""


def _executable(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.mark.parametrize(
    ("gpus", "how", "code", "requeued", "exit_code"),
    [
        (2, "stopped", 1, True, 75),  # torchrun's 1 after every worker stopped cleanly
        (1, "stopped", 75, True, 75),
        (1, None, 75, True, 75),  # a stop whose record could not be written
        (2, "finished", 0, False, 0),
        (2, "crashed", 1, False, 1),
        (2, None, 1, False, 1),  # died without a word: the earlier clean stop is no longer true
    ],
)
def test_the_script_requeues_what_the_run_folder_says_stopped(
    tiny_archive, tmp_path, gpus, how, code, requeued, exit_code
):
    spec = spec_from_options(tiny_archive, "tiny-cpu", 0.128, [f"train.gpus={gpus}"])
    folder = tmp_path / "job"
    run_dir = folder / "runs" / "00000-tiny"
    run_dir.mkdir(parents=True)
    (run_dir / rundir.RUN_JSON).write_text("{}")
    rundir.write_ending(run_dir, "stopped", 32, None)  # the previous attempt's clean stop
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _executable(bin_dir / "scontrol", FAKE_SCONTROL)
    _executable(bin_dir / "srun", FAKE_SRUN)
    launcher = _executable(tmp_path / "launcher", FAKE_LAUNCHER)
    # 2 GPUs on 2 nodes: torchrun, which exits 1 after a clean stop; 1 GPU: heroforge alone
    text = sbatch_text(spec, folder, SlurmResources(nodes=gpus))
    script = _executable(tmp_path / "job.sbatch", text.replace(shlex.quote(sys.executable),
                                                               str(launcher)))  # fmt: skip
    calls = tmp_path / "calls"
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "CALLS": str(calls),
           "REAL_PYTHON": sys.executable, "FAKE_HOW": how or "", "FAKE_CODE": str(code),
           "SLURM_JOB_ID": "4242", "SLURM_JOB_NODELIST": "node[7-8]"}  # fmt: skip
    env.pop("MASTER_PORT", None)
    done = subprocess.run(["bash", str(script)], env=env, capture_output=True, timeout=60)
    said = calls.read_text()
    assert done.returncode == exit_code, said + done.stderr.decode()
    assert ("scontrol requeue 4242" in said) == requeued, said
    (launch,) = [line for line in said.splitlines() if line.startswith("launch")]
    assert f"--resume {run_dir}/ --gpus {gpus} " in launch
    assert launch.endswith("MASTER_ADDR=node7 MASTER_PORT=24242")  # 20000 + the job id
    if gpus > 1:
        assert "--rdzv_endpoint node7:24242" in launch


def test_a_folder_under_a_file_is_a_user_error(tiny_archive, tmp_path):
    spec = spec_from_options(tiny_archive, "tiny-cpu", 1.0, [])
    (tmp_path / "file").write_text("in the way")
    with pytest.raises(UserError, match=r"cannot write the SLURM job into .*: Not a directory"):
        write_sbatch(spec, tmp_path / "file" / "job", SlurmResources())


def test_a_full_disk_is_an_operational_failure(tiny_archive, tmp_path, monkeypatch):
    spec = spec_from_options(tiny_archive, "tiny-cpu", 1.0, [])

    def no_space(*_args):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("heroforge.fileio.os.replace", no_space)
    with pytest.raises(OperationalError, match="cannot write the SLURM job into") as err:
        write_sbatch(spec, tmp_path / "job", SlurmResources())
    assert "\n" not in str(err.value)


@pytest.mark.slow
def test_script_trains_stops_on_sigterm_and_resumes(tiny_archive, tmp_path):
    spec = spec_from_options(tiny_archive, "tiny-cpu", 0.128, FAST_JOB)
    script = write_sbatch(spec, tmp_path / "job", SlurmResources())
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("SLURM_JOB_ID", None)
    first = subprocess.Popen(["bash", str(script)], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    stats = tmp_path / "job" / "runs"
    deadline = time.time() + 300
    while not any(p.stat().st_size for p in stats.glob("*/stats.jsonl")):
        assert time.time() < deadline, first.stdout.read().decode()
        assert first.poll() is None, first.stdout.read().decode()
        time.sleep(0.05)
    first.send_signal(signal.SIGTERM)  # what SLURM sends to the batch shell before preemption
    assert first.wait(timeout=120) == 75, first.stdout.read().decode()
    second = subprocess.run(["bash", str(script)], env=env, capture_output=True, timeout=300)
    assert second.returncode == 0, second.stdout.decode() + second.stderr.decode()
    assert "resumed" in second.stderr.decode() + second.stdout.decode()
    (run,) = list(stats.iterdir())
    assert tick_kimgs(run) == pytest.approx([0.032, 0.064, 0.096, 0.128])
