"""Two gloo processes train exactly what one process does with gradient accumulation."""

import pytest
import torch
import torch.multiprocessing as mp

from helpers.training import (
    EVERY_PHASE,
    become_rank,
    checkpoint_tensors,
    free_port,
    only_run,
    quiet,
    spawn_two,
)
from heroforge.config import load_config
from heroforge.nets.loading import load_latest
from heroforge.runtime.dist import leave_process
from heroforge.train.run import start

STEPS = [*EVERY_PHASE, "train.tick_kimg=0.032", "train.checkpoint_kimg=1", "train.r1_interval=2"]


def _worker(rank: int, world: int, port: int, archive: str, outdir: str) -> None:
    become_rank(rank, world, port)
    cfg = load_config("tiny-cpu", [*STEPS, f"train.gpus={world}"])
    start(archive, cfg, outdir, total_kimg=0.032, log=quiet)
    leave_process(0)  # as `heroforge train` ends a process of a group


@pytest.mark.slow
def test_two_processes_equal_one_with_accumulation(tiny_archive, tmp_path):
    torch.set_num_threads(1)
    one = load_config("tiny-cpu", [*STEPS, "train.batch_gpu=4"])  # two chunks of 4, accumulated
    start(tiny_archive, one, tmp_path / "one", total_kimg=0.032, log=quiet)
    mp.spawn(_worker, args=(2, free_port(), str(tiny_archive), str(tmp_path / "two")), nprocs=2)
    a = checkpoint_tensors(only_run(tmp_path / "one"))
    b = checkpoint_tensors(only_run(tmp_path / "two"))
    assert a.keys() == b.keys()
    worst = max((a[k] - b[k]).abs().max().item() for k in a)
    assert worst < 1e-4, worst


def _stopping_worker(rank: int, port: int, archive: str, outdir: str, results: dict) -> None:
    """Rank 1 alone gets the stop signal, after its second step: both must stop together."""
    import signal

    from heroforge.train.loop import Trainer

    step = Trainer.step

    def step_then_signal(self, stats):
        step(self, stats)
        if rank == 1 and self.progress.step == 2:
            self.request_stop(signal.SIGTERM)

    Trainer.step = step_then_signal
    become_rank(rank, 2, port)
    cfg = load_config("tiny-cpu", [*STEPS, "train.gpus=2"])
    _, outcome = start(archive, cfg, outdir, total_kimg=0.1, log=quiet)
    results[rank] = outcome
    leave_process(0)  # as `heroforge train` ends a process of a group


def test_a_stop_signal_on_one_process_stops_all_at_the_same_step(tiny_archive, tmp_path):
    with mp.Manager() as manager:
        results = manager.dict()
        args = (free_port(), str(tiny_archive), str(tmp_path), results)
        assert spawn_two(_stopping_worker, args, timeout=240)
        assert dict(results) == {0: "interrupted", 1: "interrupted"}
    checkpoint, _ = load_latest(next(p for p in tmp_path.iterdir() if p.is_dir()) / "checkpoints")
    assert checkpoint.meta["progress"]["step"] == 2


def _tick_means(rank: int, init_file: str, results: dict) -> None:
    import torch.distributed as dist

    from heroforge.train.stats import TickStats

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    try:
        stats = TickStats()
        for value in [1.0, 3.0] if rank == 0 else [5.0]:  # rank 1 trained one chunk less
            stats.add({"loss/D": torch.tensor([value, value])})
        results[rank] = stats.means()
    finally:
        dist.barrier()
        dist.destroy_process_group()


def test_tick_means_cover_every_process(tmp_path):
    with mp.Manager() as manager:
        results = manager.dict()
        mp.spawn(_tick_means, args=(str(tmp_path / "init"), results), nprocs=2)
        assert dict(results) == {0: {"loss/D": 3.0}, 1: {"loss/D": 3.0}}
