"""Data-parallel set-up: one process per GPU (or one process alone).

The processes come from `heroforge train --gpus N` (runtime/launch.py) or torchrun, which set
RANK, LOCAL_RANK and WORLD_SIZE, or from SLURM's srun, whose task variables are read when those
are absent (launch.slurm_rank_env). With several processes we join the process group
(NCCL on GPUs, gloo on CPUs) and each process trains its chunks of every global minibatch.
Gradients are summed over processes once per phase (not per chunk), which is what DDP's
no_sync during accumulation achieves, with less machinery for our four-phase step.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, NoReturn

import torch
import torch.distributed as dist

from heroforge.errors import UserError
from heroforge.runtime.launch import slurm_rank_env

_joined = False  # set once this process joins a process group


@dataclass(frozen=True)
class DistInfo:
    rank: int
    world: int
    device: torch.device

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(prefer_cuda: bool = True) -> DistInfo:
    # an srun task: RANK etc. from SLURM's variables, where torch's env:// rendezvous reads them
    os.environ.update(slurm_rank_env(os.environ))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = prefer_cuda and torch.cuda.is_available()
    device = torch.device("cuda", _gpu_index(local, rank, world)) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    if world > 1 and not dist.is_initialized():
        # The others wait in a collective while rank 0 alone writes a checkpoint (a slow
        # network disk), computes the metrics from the gathered features or loads a snapshot
        # to roll back to: NCCL's default 10 minutes is too tight for that, and a real hang
        # costs little more to notice late.
        dist.init_process_group("nccl" if cuda else "gloo", timeout=collective_timeout())
        global _joined
        _joined = True
    return DistInfo(rank, world, device)


def _gpu_index(local: int, rank: int, world: int) -> int:
    """The GPU of the process with this local rank. An srun task bound to its GPU (srun
    --gpus-per-task 1) sees that one only, as GPU 0; torchrun and our launcher set
    LOCAL_WORLD_SIZE and expect every GPU of the machine to be visible."""
    count = torch.cuda.device_count()
    index = 0 if count == 1 and "LOCAL_WORLD_SIZE" not in os.environ else local
    if index >= count:
        raise UserError(
            f"process {rank} of {world} wants GPU {index}, but this machine shows {count}: "
            "ask for at most that many GPUs per machine"
        )
    return index


def collective_timeout() -> timedelta:
    """How long a process waits in a collective: HEROFORGE_DIST_TIMEOUT_MIN, 180 minutes."""
    text = os.environ.get("HEROFORGE_DIST_TIMEOUT_MIN", "180")
    try:
        minutes = float(text)
    except ValueError:
        minutes = -1.0
    if not 0 < minutes < float("inf"):
        raise UserError(f"HEROFORGE_DIST_TIMEOUT_MIN must be a number of minutes > 0, got {text!r}")
    return timedelta(minutes=minutes)


def from_rank0(value: Any, world: int) -> Any:
    """Rank 0's value on every process (as is in one process)."""
    if world == 1:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def distributed_sum(stats: torch.Tensor) -> torch.Tensor:
    """Sum a tensor over the processes of torch.distributed (in place); as is when not running.

    With the NCCL backend the tensor must be on this process's GPU: `accumulate` keeps the
    statistics on the device of the logits, so this holds when D runs on the GPU."""
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(stats, op=dist.ReduceOp.SUM)
    return stats


class StopAgreement:
    """Whether any process wants to stop, agreed by all; call it once after every step.

    Each process's signal handler sets its own flag, at its own moment: acting on them
    separately would let one process leave for its final checkpoint while another starts a
    step, and their collectives would never meet. On CUDA (lagged) the vote of step k is read
    after step k+1 has been queued, so the host never waits for the GPU to drain inside the
    loop; all processes still stop after the same step, one step later than on a CPU."""

    def __init__(self, info: DistInfo, lagged: bool | None = None) -> None:
        self.info = info
        self.lagged = info.device.type == "cuda" if lagged is None else lagged
        self._pending: tuple[torch.Tensor, torch.cuda.Event | None] | None = None

    def __call__(self, stop: bool) -> bool:
        if self.info.world == 1:
            return stop
        # torch.full fills on the device; torch.tensor would copy from the host and wait
        votes = distributed_sum(torch.full((1,), float(stop), device=self.info.device))
        if not self.lagged:
            return bool(votes.item() > 0)
        arrived = None
        if votes.is_cuda:
            host = torch.empty(1, pin_memory=True)
            host.copy_(votes, non_blocking=True)
            arrived = torch.cuda.Event()
            arrived.record()
            votes = host
        previous, self._pending = self._pending, (votes, arrived)
        if previous is None:
            return False
        votes, arrived = previous
        if arrived is not None:
            arrived.synchronize()  # the copy queued a step ago, not the step since
        return bool(votes.item() > 0)


def all_reduce_grads(params: list[torch.nn.Parameter], world: int, clean: bool = True) -> None:
    """Sum the gradients over processes in one flat buffer, then (clean) replace NaN/inf.

    With loss scaling clean is False: the scaler must see the inf/NaN to skip the step, and
    since every process then holds the same summed gradients, all of them skip it together."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    if world > 1:
        flat = torch.cat([g.flatten() for g in grads])
        dist.all_reduce(flat)
        if clean:
            torch.nan_to_num(flat, nan=0, posinf=1e5, neginf=-1e5, out=flat)
        offset = 0
        for g in grads:
            g.copy_(flat[offset : offset + g.numel()].view_as(g))
            offset += g.numel()
    elif clean:
        for g in grads:
            torch.nan_to_num(g, nan=0, posinf=1e5, neginf=-1e5, out=g)


def broadcast_module(module: torch.nn.Module) -> None:
    """Give every process rank 0's parameters and buffers (after init or resume)."""
    if dist.is_initialized():
        for tensor in [*module.parameters(), *module.buffers()]:
            dist.broadcast(tensor.data, src=0)


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def shutdown_distributed() -> None:
    """Leave the process group (torchrun warns about, and NCCL may hang on, groups left open)."""
    if dist.is_initialized():
        dist.destroy_process_group()


def joined_a_group() -> bool:
    """Whether this process has been one of a process group (it may have left it since)."""
    return _joined


def leave_process(code: int) -> NoReturn:
    """End a process of a process group with `code`, after its exit handlers but without the
    interpreter's teardown. That teardown destroys what is left of the communication library's
    C++ objects in no particular order, and now and then aborts ("terminate called without an
    active exception", SIGABRT: seen in CI after a run that had ended well and after a rank's
    own error), so that a launcher reports a crash where there was none. Everything the run
    wrote is closed before this point; the exit handlers still stop leftover data loaders."""
    shutdown_distributed()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe: nothing left to say
            stream.flush()
    os._exit(code)
