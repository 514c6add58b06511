"""`manager slurm` against a real SLURM: a one-node cluster on localhost (CPU only) that these
tests start and stop. sbatch accepts the script, the job trains, a preemption checkpoints and
requeues the job, and the job ends with exactly its target kimg."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from helpers.slurm_cluster import SlurmCluster, unavailable_reason
from helpers.training import tick_kimgs
from heroforge.rundir import LATEST, checkpoint_nimg, find_run_dir, read_marker

NO_CLUSTER = unavailable_reason()
pytestmark = [pytest.mark.slow, pytest.mark.skipif(NO_CLUSTER is not None, reason=str(NO_CLUSTER))]

TICK_KIMG = 0.032  # 4 steps of 8 images; a checkpoint at every tick
FAST_JOB = ["--set", f"train.tick_kimg={TICK_KIMG}", "--set", f"train.checkpoint_kimg={TICK_KIMG}"]
# The node has 2 CPUs and no real GPU: what a user of such a small node adds on sbatch's
# command line (it overrides the script's #SBATCH lines)
SMALL_NODE = ["--cpus-per-task=1", "--mem=1G"]
ENDED = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL"}
JOB_TIMEOUT_S = 900  # tiny CPU training on a loaded 2-core machine, with a requeue between


@pytest.fixture(scope="module")
def cluster():
    started = SlurmCluster()
    started.start()
    yield started
    started.stop()


def write_job(cli, archive: Path, folder: Path, kimg: float, *overrides: str) -> Path:
    code, out, err = cli(
        "manager", "slurm", "--data", str(archive), "--preset", "tiny-cpu", "--kimg", str(kimg),
        *FAST_JOB, *overrides, "--out", str(folder), "--time", "30:00",
    )  # fmt: skip
    assert code == 0, out + err
    return folder / "job.sbatch"


def job_output(folder: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in sorted(folder.glob("slurm-*.out")))


def wait_until(cluster: SlurmCluster, folder: Path, condition, what: str) -> None:
    """Wait for condition(), or fail with the job's output and the daemons' logs."""
    try:
        cluster.wait_for(condition, JOB_TIMEOUT_S, what)
    except AssertionError as err:
        raise AssertionError(f"{err}\n--- job output\n{job_output(folder)}") from None


def run_until_end(cluster: SlurmCluster, folder: Path, job_id: int) -> dict[str, str]:
    wait_until(cluster, folder, lambda: cluster.job(job_id)["JobState"] in ENDED, "the job's end")
    return cluster.job(job_id)


def first_tick_written(folder: Path) -> bool:
    return any(p.stat().st_size for p in (folder / "runs").glob("*/stats.jsonl"))


def assert_trained_to(folder: Path, kimg: float, job: dict[str, str]) -> None:
    output = job_output(folder)
    assert job["JobState"] == "COMPLETED", output
    assert job["ExitCode"] == "0:0", output
    run = find_run_dir(folder / "runs")
    assert run is not None, output
    ticks = round(kimg / TICK_KIMG)
    assert tick_kimgs(run) == pytest.approx([TICK_KIMG * (i + 1) for i in range(ticks)]), output
    latest = read_marker(run / "checkpoints", LATEST)
    assert latest is not None, output
    assert checkpoint_nimg(latest) == round(kimg * 1000), output


def test_sbatch_accepts_the_script_and_the_job_trains(cluster, cli, tiny_archive, tmp_path):
    folder = tmp_path / "job"
    job_id = cluster.sbatch(write_job(cli, tiny_archive, folder, 0.064), *SMALL_NODE)
    job = run_until_end(cluster, folder, job_id)
    assert_trained_to(folder, 0.064, job)
    assert job["Restarts"] == "0"


@pytest.mark.parametrize(
    "preempt",
    [
        pytest.param(["scancel", "--signal=TERM", "--batch"], id="scancel-TERM"),
        pytest.param(["scontrol", "requeue"], id="scontrol-requeue"),
    ],
)
def test_a_preempted_job_checkpoints_requeues_and_ends_at_its_target(
    cluster, cli, tiny_archive, tmp_path, preempt
):
    folder = tmp_path / "job"
    # no checkpoint before the end but the one the stop writes: resuming past 0 proves it
    script = write_job(cli, tiny_archive, folder, 0.128, "--set", "train.checkpoint_kimg=1")
    job_id = cluster.sbatch(script, *SMALL_NODE)
    wait_until(cluster, folder, lambda: first_tick_written(folder), "the first tick")
    cluster.run(*preempt, str(job_id))
    job = run_until_end(cluster, folder, job_id)
    assert_trained_to(folder, 0.128, job)
    assert job["Restarts"] == "1", job_output(folder)
    resumed = re.search(r"resumed .* at ([\d.]+) kimg from ckpt-", job_output(folder))
    assert resumed is not None, job_output(folder)
    assert 0 < float(resumed.group(1)) < 0.128


def test_two_tasks_train_and_a_preempted_job_requeues(cluster, cli, tiny_archive, tmp_path):
    folder = tmp_path / "job"
    overrides = ["--set", "train.gpus=2", "--set", "train.checkpoint_kimg=1"]
    job_id = cluster.sbatch(write_job(cli, tiny_archive, folder, 0.128, *overrides), *SMALL_NODE)
    wait_until(cluster, folder, lambda: first_tick_written(folder), "the first tick")
    cluster.run("scancel", "--signal=TERM", "--batch", str(job_id))
    job = run_until_end(cluster, folder, job_id)
    assert_trained_to(folder, 0.128, job)
    assert job["Restarts"] == "1", job_output(folder)
