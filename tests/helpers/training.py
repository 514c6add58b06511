"""Settings and readers for the tests that train tiny runs."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.multiprocessing as mp

from helpers.files import read_jsonl
from heroforge.nets.loading import load_latest

# The tiny-cpu preset trains for quick learning (batch 4, no path length, style mixing or ADA).
# Tests of the loop's machinery (exact resume, processes vs accumulation, precision, memory)
# must run every phase and every piece of state, so they add these back.
EVERY_PHASE = [
    "train.batch=8",
    "train.pl_weight=2",
    "train.style_mixing=0.9",
    "augment.mode=ada",
    "augment.speed_kimg=5",  # p moves within a test's few steps
]


def quiet(*_args: object) -> None:
    """A training log that prints nothing."""


def only_run(outdir: Path) -> Path:
    """The one run folder that training made in outdir."""
    (run,) = [p for p in outdir.iterdir() if p.is_dir()]
    return run


def network_tensors(nets: dict[str, torch.nn.Module]) -> dict[str, torch.Tensor]:
    """Every network's state as "NET.KEY": tensor, copied: the networks may train on."""
    return {
        f"{name}.{key}": value.detach().clone()
        for name, net in nets.items()
        for key, value in net.state_dict().items()
    }


def checkpoint_tensors(run_dir: Path, *, with_extra: bool = False) -> dict[str, torch.Tensor]:
    """The networks of the run's latest checkpoint; with_extra adds its other training state
    (as "extra.KEY") for the tests that check a resume bit for bit."""
    checkpoint, _ = load_latest(run_dir / "checkpoints")
    tensors = network_tensors(checkpoint.loaded.networks)
    if with_extra:
        tensors.update({f"extra.{k}": v for k, v in checkpoint.loaded.extra.items()})
    return tensors


def tick_kimgs(run_dir: Path) -> list[float]:
    """The kimg of every tick in stats.jsonl (event lines such as verdicts repeat a tick's kimg)."""
    return [r["kimg"] for r in read_jsonl(run_dir / "stats.jsonl") if "event" not in r]


def free_port() -> int:
    """A TCP port nobody listens on now, for a process group's rendezvous."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def become_rank(rank: int, world: int, port: int) -> None:
    """Make this (spawned) process rank `rank` of `world` gloo processes, as torchrun would,
    with one torch thread (the processes share the cores)."""
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(world),
    )
    torch.set_num_threads(1)


def spawn_two(worker: Callable, args: tuple, timeout: float) -> bool:
    """worker(rank, *args) in two spawned processes; True once both ended within `timeout`
    seconds. Processes still running then are killed (mismatched collectives hang: the test
    fails instead of stalling the suite)."""
    context = mp.spawn(worker, args=args, nprocs=2, join=False)
    deadline = time.monotonic() + timeout
    finished = False  # join returns as each process ends, True once all have
    while not finished and time.monotonic() < deadline:
        finished = context.join(timeout=max(1.0, deadline - time.monotonic()))
    if not finished:
        for process in context.processes:
            process.kill()
    return finished
