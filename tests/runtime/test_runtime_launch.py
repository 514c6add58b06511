"""The launcher of `heroforge train --gpus N`: stand-in workers (tests/runtime/launched/) show
what it does with signals, failures and exit codes; how a process learns its rank under SLURM;
and that the train command starts workers only when it should."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from heroforge import rundir
from heroforge.config import load_config
from heroforge.errors import UserError
from heroforge.runtime import launch

FAKE_WORKER = Path(__file__).parent / "launched" / "fake_worker.py"
# runs the launcher on its own, as `heroforge train --gpus N` does, and prints its result
LAUNCHER = (
    "import dataclasses, json, sys\n"
    "from heroforge.runtime.launch import run_workers\n"
    "result = run_workers(sys.argv[2:], int(sys.argv[1]))\n"
    "print(json.dumps(dataclasses.asdict(result)))\n"
)
WAIT_S = 60  # generous: the machine is shared by several test runs


def _start_launcher(tmp_path: Path, *plans: str, env: dict | None = None) -> subprocess.Popen:
    worker = [sys.executable, str(FAKE_WORKER), str(tmp_path), *plans]
    return subprocess.Popen(
        [sys.executable, "-c", LAUNCHER, str(len(plans)), *worker],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )


def _finish(launcher: subprocess.Popen) -> tuple[dict, str]:
    """The launcher's result and its stderr, once it has ended."""
    out, err = launcher.communicate(timeout=WAIT_S)
    assert launcher.returncode == 0, err
    return json.loads(out.splitlines()[-1]), err


def _wait_for(paths: list[Path]) -> None:
    deadline = time.monotonic() + WAIT_S
    while not all(p.exists() for p in paths):
        assert time.monotonic() < deadline, f"never appeared: {[str(p) for p in paths]}"
        time.sleep(0.05)


def _ready(tmp_path: Path, nprocs: int) -> None:
    _wait_for([tmp_path / f"env{rank}.json" for rank in range(nprocs)])


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGUSR1])
def test_a_stop_signal_reaches_every_worker_and_a_checkpointed_stop_exits_75(tmp_path, signum):
    launcher = _start_launcher(tmp_path, "stop", "stop", "stop")
    _ready(tmp_path, 3)
    launcher.send_signal(signum)
    result, _ = _finish(launcher)
    assert result == {"code": 75, "failure": None, "details": []}
    for rank in range(3):
        assert (tmp_path / f"got{rank}").read_text() == signum.name


def test_the_launcher_waits_for_a_slow_checkpoint_however_short_the_kill_time(tmp_path):
    """HEROFORGE_KILL_AFTER_MIN is for a failed run's workers, never for a stop's checkpoint."""
    launcher = _start_launcher(tmp_path, "slowstop", "stop", env={launch.KILL_AFTER_ENV: "0.001"})
    _ready(tmp_path, 2)
    launcher.send_signal(signal.SIGTERM)
    result, _ = _finish(launcher)
    assert result["code"] == 75


def test_workers_get_their_rank_and_one_rendezvous(tmp_path):
    launcher = _start_launcher(tmp_path, "done", "done")
    result, _ = _finish(launcher)
    assert result == {"code": 0, "failure": None, "details": []}
    envs = [json.loads((tmp_path / f"env{rank}.json").read_text()) for rank in range(2)]
    assert [(e["RANK"], e["LOCAL_RANK"], e["WORLD_SIZE"]) for e in envs] == [
        ("0", "0", "2"),
        ("1", "1", "2"),
    ]
    assert envs[0]["MASTER_PORT"] == envs[1]["MASTER_PORT"]
    assert envs[0]["MASTER_ADDR"] == "127.0.0.1"


def test_finished_and_stopped_workers_make_a_resumable_run(tmp_path):
    launcher = _start_launcher(tmp_path, "done", "stop")
    _ready(tmp_path, 2)
    launcher.send_signal(signal.SIGTERM)
    result, _ = _finish(launcher)
    assert result["code"] == 75


def test_a_failed_worker_takes_the_others_down_and_its_error_comes_first(tmp_path):
    launcher = _start_launcher(tmp_path, "stop", "fail")
    result, err = _finish(launcher)
    assert (tmp_path / "got0").read_text() == "SIGTERM"
    assert result["code"] == 3
    assert result["failure"] == "worker 1 of 2 failed (exit code 3): ValueError: boom on rank 1"
    assert result["details"][-1] == "[rank 1] ValueError: boom on rank 1"
    assert err == ""  # rank 1's lines are shown once, in the report, not as they came


def test_a_worker_killed_by_a_signal_is_a_failure_with_the_shell_code(tmp_path):
    launcher = _start_launcher(tmp_path, "stop", "kill")
    result, _ = _finish(launcher)
    assert result["code"] == 128 + signal.SIGKILL
    assert result["failure"].startswith("worker 1 of 2 failed (killed by SIGKILL): ")


def test_a_worker_that_ignores_sigterm_after_a_failure_is_killed_later(tmp_path):
    """A peer blocked in a collective with the dead one cannot run its signal handler."""
    launcher = _start_launcher(tmp_path, "ignore", "fail", env={launch.KILL_AFTER_ENV: "0.005"})
    result, _ = _finish(launcher)  # would time out if rank 0 were never killed
    assert (tmp_path / "got0").read_text() == "SIGTERM"
    assert result["code"] == 3


@pytest.mark.parametrize("text", ["soon", "-1", "nan", "inf"])
def test_a_bad_kill_time_is_a_user_error(monkeypatch, text):
    monkeypatch.setenv(launch.KILL_AFTER_ENV, text)
    with pytest.raises(UserError, match=launch.KILL_AFTER_ENV):
        launch.kill_after()


def test_kill_time_defaults_to_ten_minutes(monkeypatch):
    monkeypatch.delenv(launch.KILL_AFTER_ENV, raising=False)
    assert launch.kill_after() == 600


@pytest.mark.parametrize(
    ("lines", "error"),
    [
        (["Traceback (most recent call last):", "  x", "RuntimeError: boom"], "RuntimeError: boom"),
        (["heroforge: error: the disk is full", "[W destroy_process_group]"], "the disk is full"),
        (["RuntimeError: boom", "[W1023 12:00] ProcessGroupGloo warning"], "RuntimeError: boom"),
        (["[rank1]: Traceback", "[rank1]: ValueError: x", "[W] warning"], "ValueError: x"),
        (["segfault somewhere", ""], "segfault somewhere"),
        ([], "no output"),
    ],
)
def test_error_line_finds_why_a_worker_failed(lines, error):
    assert launch.error_line(lines) == error


def test_worker_env_keeps_the_users_thread_count(monkeypatch):
    env = launch.worker_env({"OMP_NUM_THREADS": "3", "HOME": "/h"}, 1, 4, 1234)
    assert env["OMP_NUM_THREADS"] == "3"
    assert env["HOME"] == "/h"
    assert (env["RANK"], env["WORLD_SIZE"], env["MASTER_PORT"]) == ("1", "4", "1234")


# -- SLURM tasks -------------------------------------------------------------------------------
SRUN_TASK = {
    "SLURM_PROCID": "5",
    "SLURM_NTASKS": "8",
    "SLURM_LOCALID": "1",
    "SLURM_STEP_ID": "0",
    "SLURM_JOB_ID": "123456",
    "SLURM_JOB_NODELIST": "gpu[07-09,12]",
}


def test_an_srun_task_gets_its_rank_from_slurm():
    assert launch.slurm_rank_env(SRUN_TASK) == {
        "RANK": "5",
        "WORLD_SIZE": "8",
        "LOCAL_RANK": "1",
        "MASTER_ADDR": "gpu07",
        "MASTER_PORT": str(20000 + 123456 % 20000),
    }


def test_an_srun_task_takes_the_rendezvous_the_batch_script_gives():
    env = {**SRUN_TASK, "MASTER_ADDR": "10.0.0.7", "MASTER_PORT": "4242"}
    mapped = launch.slurm_rank_env(env)
    assert (mapped["MASTER_ADDR"], mapped["MASTER_PORT"]) == ("10.0.0.7", "4242")


@pytest.mark.parametrize(
    "env",
    [
        {**SRUN_TASK, "RANK": "0", "WORLD_SIZE": "8", "LOCAL_RANK": "0"},  # torchrun under srun
        {**SRUN_TASK, "SLURM_NTASKS": "1"},  # one task: it may start its own workers
        {k: v for k, v in SRUN_TASK.items() if k != "SLURM_STEP_ID"},  # the batch script
        {},
    ],
    ids=["torchrun", "one-task", "batch-script", "no-slurm"],
)
def test_slurm_variables_count_only_for_srun_tasks_of_several(env):
    assert launch.slurm_rank_env(env) == {}


def test_already_launched_by_torchrun_srun_or_the_launcher():
    assert launch.already_launched({"RANK": "0"})
    assert launch.already_launched(SRUN_TASK)
    assert not launch.already_launched({**SRUN_TASK, "SLURM_NTASKS": "1"})
    assert not launch.already_launched({})


def test_an_srun_task_without_its_local_id_is_a_user_error():
    env = {k: v for k, v in SRUN_TASK.items() if k != "SLURM_LOCALID"}
    with pytest.raises(UserError, match="SLURM_LOCALID"):
        launch.slurm_rank_env(env)


@pytest.mark.parametrize(
    ("nodelist", "host"),
    [
        ("node01", "node01"),
        ("gpu[07-09,12],cpu1", "gpu07"),
        ("cpu1,gpu[07-09]", "cpu1"),
        ("rack[2-3]-node[004,007]", "rack2-node004"),
        ("a-b-[1-2]", "a-b-1"),
    ],
)
def test_first_host_of_a_slurm_node_list(nodelist, host):
    assert launch.first_host(nodelist) == host


@pytest.mark.parametrize("nodelist", ["", "gpu[07-09", "[]"])
def test_an_unreadable_node_list_is_a_user_error(nodelist):
    with pytest.raises(UserError, match="SLURM_JOB_NODELIST"):
        launch.first_host(nodelist)


# -- the train command -------------------------------------------------------------------------
@pytest.fixture
def launches(monkeypatch):
    """What the train command asked the launcher to run (which then reports `outcome`)."""
    for name in (*launch.RANK_VARIABLES, "SLURM_PROCID", "SLURM_NTASKS", "SLURM_STEP_ID"):
        monkeypatch.delenv(name, raising=False)
    calls: list[tuple[list[str], int]] = []
    outcome = [launch.LaunchResult(75, None, [])]

    def run_workers(command: list[str], nprocs: int) -> launch.LaunchResult:
        calls.append((command, nprocs))
        return outcome[0]

    monkeypatch.setattr(launch, "run_workers", run_workers)
    return calls, outcome


def test_train_on_several_gpus_starts_as_many_workers_with_its_options(cli, launches, tmp_path):
    calls, _ = launches
    data = tmp_path / "heroes.zip"
    data.write_bytes(b"checked by the workers")
    code, _, err = cli("train", "--data", str(data), "--preset", "tiny-cpu", "--gpus", "2",
                       "--kimg", "3", "--set", "train.seed=5",
                       "--outdir", str(tmp_path))  # fmt: skip
    assert code == 75, err
    (command, nprocs), *_ = calls
    assert nprocs == 2
    assert command == [sys.executable, "-m", "heroforge", "train", "--data", str(data),
                       "--preset", "tiny-cpu", "--outdir", str(tmp_path), "--kimg", "3.0",
                       "--gpus", "2", "--set", "train.seed=5"]  # fmt: skip


def test_a_resumed_run_starts_as_many_workers_as_its_config_says(cli, launches, tmp_path):
    calls, _ = launches
    run = tmp_path / "00000-run"
    run.mkdir()
    rundir.write_config(run, load_config("tiny-cpu", ["train.gpus=4"]))
    rundir.write_run_json(run, {"data": "heroes.zip", "total_kimg": 4})
    code, _, _ = cli("train", "--resume", str(run), "--force")
    assert code == 75
    assert calls == [([sys.executable, "-m", "heroforge", "train", "--resume", str(run),
                       "--force"], 4)]  # fmt: skip


def test_a_missing_data_file_is_said_once_before_any_worker_starts(cli, launches, tmp_path):
    calls, _ = launches
    code, _, err = cli("train", "--data", str(tmp_path / "nope.zip"), "--gpus", "2")
    assert code == 2
    assert err == f"heroforge: error: --data {tmp_path / 'nope.zip'} does not exist\n"
    assert calls == []


def test_a_failed_worker_is_reported_first_then_its_last_lines(cli, launches, tmp_path):
    _, outcome = launches
    outcome[0] = launch.LaunchResult(3, "worker 1 of 2 failed (exit code 3): E: x", ["[rank 1] E"])
    data = tmp_path / "heroes.zip"
    data.write_bytes(b"checked by the workers")
    code, _, err = cli("train", "--data", str(data), "--preset", "tiny-cpu", "--gpus", "2")
    assert code == 3
    assert err.splitlines() == [
        "heroforge: error: worker 1 of 2 failed (exit code 3): E: x",
        "[rank 1] E",
    ]


@pytest.mark.slow
def test_one_gpu_trains_in_this_process(cli, launches, tiny_archive, tmp_path):
    calls, _ = launches
    code, _, err = cli("train", "--data", str(tiny_archive), "--preset", "tiny-cpu",
                       "--gpus", "1", "--kimg", "0.008", "--outdir", str(tmp_path))  # fmt: skip
    assert code == 0, err
    assert calls == []
    assert (tmp_path / "00000-tiny-cpu" / "checkpoints" / "latest.json").exists()


def test_workers_that_ended_and_were_reaped_before_the_wait_still_count(tmp_path):
    """A relay thread's poll() reaps a worker that ends at once: under load that can happen
    before the launcher starts waiting, where its pid is gone (found by a fresh-clone CI run)."""
    command = [sys.executable, "-c", "import os, sys; sys.exit(int(os.environ['RANK']))"]
    group = launch._Workers(command, 2, tmp_path)
    group.start()
    for proc in group.procs:
        proc.wait()  # reaped: os.pidfd_open(pid) now fails
    group.wait(grace=5.0)
    assert group.first_failed == 1  # rank 1 exited 1; rank 0 finished
    assert [proc.returncode for proc in group.procs] == [0, 1]
