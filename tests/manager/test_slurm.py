"""The SLURM batch script starts the run, checkpoints on the preemption signal, resumes."""

import errno
import os
import signal
import subprocess
import time

import pytest

from helpers.training import tick_kimgs
from heroforge.errors import OperationalError, UserError
from heroforge.manager.slurm import sbatch_text, write_sbatch
from heroforge.manager.spec import spec_from_options

FAST_JOB = ["train.tick_kimg=0.032", "train.checkpoint_kimg=0.032"]


def test_multi_node_script_uses_torchrun_rendezvous(tiny_archive, tmp_path):
    spec = spec_from_options(tiny_archive, "tiny-cpu", 1.0, ["train.gpus=8", "train.batch=8"])
    text = sbatch_text(spec, tmp_path, nodes=2, time_limit="12:00:00")
    for expected in ("#SBATCH --nodes=2", "#SBATCH --gpus-per-node=4", "#SBATCH --requeue",
                     "#SBATCH --signal=B:TERM@120", "--nnodes 2 --nproc_per_node 4",
                     "--rdzv_backend c10d", "scontrol requeue"):  # fmt: skip
        assert expected in text
    assert subprocess.run(["bash", "-n"], input=text.encode()).returncode == 0
    with pytest.raises(UserError, match="does not split over 3 nodes"):
        sbatch_text(spec, tmp_path, nodes=3, time_limit="1:00:00")


def test_a_folder_under_a_file_is_a_user_error(tiny_archive, tmp_path):
    spec = spec_from_options(tiny_archive, "tiny-cpu", 1.0, [])
    (tmp_path / "file").write_text("in the way")
    with pytest.raises(UserError, match=r"cannot write the SLURM job into .*: Not a directory"):
        write_sbatch(spec, tmp_path / "file" / "job", nodes=1, time_limit="1:00:00")


def test_a_full_disk_is_an_operational_failure(tiny_archive, tmp_path, monkeypatch):
    spec = spec_from_options(tiny_archive, "tiny-cpu", 1.0, [])

    def no_space(*_args):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("heroforge.fileio.os.replace", no_space)
    with pytest.raises(OperationalError, match="cannot write the SLURM job into") as err:
        write_sbatch(spec, tmp_path / "job", nodes=1, time_limit="1:00:00")
    assert "\n" not in str(err.value)


@pytest.mark.slow
def test_script_trains_stops_on_sigterm_and_resumes(tiny_archive, tmp_path):
    spec = spec_from_options(tiny_archive, "tiny-cpu", 0.128, FAST_JOB)
    script = write_sbatch(spec, tmp_path / "job", nodes=1, time_limit="1:00:00")
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
