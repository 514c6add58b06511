"""Process-group helpers: stop votes agreed by every process, the collective timeout, sums."""

import pytest
import torch
import torch.multiprocessing as mp

from heroforge.errors import UserError
from heroforge.runtime.dist import (
    DistInfo,
    StopAgreement,
    collective_timeout,
    distributed_sum,
    init_distributed,
)


def _votes(rank: int, init_file: str, lagged: bool, results: dict) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    try:
        agree = StopAgreement(DistInfo(rank, 2, torch.device("cpu")), lagged=lagged)
        # rank 1 wants to stop from the third step on, rank 0 never
        results[rank] = [agree(rank == 1 and step >= 2) for step in range(5)]
    finally:
        dist.barrier()
        dist.destroy_process_group()


@pytest.mark.parametrize(
    ("lagged", "agreed"),
    [(False, [False, False, True, True, True]), (True, [False, False, False, True, True])],
)
def test_stop_votes_are_agreed_at_once_or_one_step_later(tmp_path, lagged, agreed):
    """Lagged is the CUDA mode: a step's vote is read after the next step, without a sync."""
    with mp.Manager() as manager:
        results = manager.dict()
        mp.spawn(_votes, args=(str(tmp_path / "init"), lagged, results), nprocs=2)
        assert dict(results) == {0: agreed, 1: agreed}


def test_one_process_stops_at_once_even_where_votes_lag():
    agree = StopAgreement(DistInfo(0, 1, torch.device("cpu")), lagged=True)
    assert [agree(False), agree(True)] == [False, True]


@pytest.mark.parametrize("text", ["soon", "0", "-5", "nan", "inf"])
def test_a_bad_collective_timeout_is_a_user_error(monkeypatch, text):
    monkeypatch.setenv("HEROFORGE_DIST_TIMEOUT_MIN", text)
    with pytest.raises(UserError, match="HEROFORGE_DIST_TIMEOUT_MIN"):
        collective_timeout()


def test_collective_timeout_defaults_to_three_hours(monkeypatch):
    monkeypatch.delenv("HEROFORGE_DIST_TIMEOUT_MIN", raising=False)
    assert collective_timeout().total_seconds() == 3 * 3600
    monkeypatch.setenv("HEROFORGE_DIST_TIMEOUT_MIN", "45")
    assert collective_timeout().total_seconds() == 45 * 60


def test_distributed_sum_is_a_no_op_without_a_process_group():
    stats = torch.tensor([3.0, 4.0], dtype=torch.float64)
    assert distributed_sum(stats) is stats
    assert stats.tolist() == [3.0, 4.0]


@pytest.fixture
def one_visible_gpu(monkeypatch):
    """A machine (or an srun task's view of one) that shows a single GPU, without touching CUDA."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: None)
    for name, value in {"RANK": "3", "WORLD_SIZE": "1", "LOCAL_RANK": "3"}.items():
        monkeypatch.setenv(name, value)


def test_an_srun_task_bound_to_its_gpu_uses_the_one_it_sees(one_visible_gpu, monkeypatch):
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    assert init_distributed().device == torch.device("cuda", 0)


def test_more_processes_than_gpus_on_a_machine_is_a_user_error(one_visible_gpu, monkeypatch):
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")  # set by torchrun and by our launcher
    with pytest.raises(UserError, match="wants GPU 3, but this machine shows 1"):
        init_distributed()


def test_a_process_of_a_group_leaves_with_its_code_after_its_exit_handlers(tmp_path):
    """leave_process ends a process of a process group without the interpreter's teardown,
    but after its exit handlers (they stop leftover data loaders) and with its output said."""
    import subprocess
    import sys

    script = f"""
import atexit, pathlib
import torch.distributed as dist
from heroforge.runtime import dist as heroforge_dist
dist.init_process_group("gloo", init_method="file://{tmp_path / "init"}", rank=0, world_size=1)
atexit.register(lambda: pathlib.Path("{tmp_path / "handled"}").write_text("yes"))
print("the last line", end="")
heroforge_dist.leave_process(3)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 3, done.stderr
    assert done.stdout == "the last line"
    assert (tmp_path / "handled").read_text() == "yes"
