"""Decoding training images ahead of the training step, in worker processes.

The trainer decides which dataset indices make up each chunk of a minibatch (train/sampler.py);
a ChunkLoader only decodes them: it is handed the series of chunks to come, sends them to its
workers in turn and gives them back in the same order (torch's DataLoader keeps the order), so
0, 1 or N workers give the same images bit for bit. Workers decode, flip and stack uint8
tensors; on a GPU the main process copies them from pinned memory without waiting.
"""

from __future__ import annotations

import atexit
import multiprocessing
import multiprocessing.connection
import signal
from collections.abc import Iterable, Iterator
from multiprocessing.process import BaseProcess

import torch
from torch.utils.data import DataLoader, Dataset

from heroforge.data.dataset import ImageDataset
from heroforge.errors import HeroforgeError, OperationalError
from heroforge.runtime.signals import STOP_SIGNALS

WORKERS_PER_GPU = 3  # the official StyleGAN2-ADA default


def worker_count(setting: int | str, device: torch.device) -> int:
    """data.workers for this process: "auto" = 3 on a GPU; on a CPU-only run none, as the
    workers would take the cores the training step needs."""
    if setting == "auto":
        return WORKERS_PER_GPU if device.type == "cuda" else 0
    return int(setting)


Chunk = tuple[torch.Tensor, torch.Tensor]  # images uint8 N x C x H x W, labels N x c_dim


class _DecodedChunks(Dataset):
    """Item `indices` (a list of dataset indices) = those items of the dataset, stacked."""

    def __init__(self, dataset: ImageDataset) -> None:
        self.dataset = dataset

    def __getitem__(self, indices: list[int]) -> Chunk | HeroforgeError:
        try:
            items = [self.dataset[i] for i in indices]
        except HeroforgeError as err:
            # Returned, not raised: a worker's exception reaches the trainer wrapped in its
            # traceback, and a bad picture must stay the one-line error it is.
            return err
        return torch.stack([x for x, _ in items]), torch.stack([c for _, c in items])


def _leave_stopping_to_the_trainer(_worker_id: int) -> None:
    """Ctrl-C, and SIGTERM or SIGUSR1 from systemd or SLURM, reach every process of the group:
    workers that died of it would fail the step the trainer is finishing before its checkpoint. The
    trainer shuts them down when it has stopped. (The workers start with these signals
    blocked, see start(): one that came before this ran is dropped here, not acted on.)"""
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


def _is_torchs(handler: object) -> bool:
    """Whether a signal handler is the one torch's DataLoader installs for SIGCHLD."""
    return getattr(handler, "__module__", None) == "torch.utils.data._utils.signal_handling"


def _how_it_ended(exitcode: int) -> str:
    if exitcode < 0:
        return f"was killed by {signal.Signals(-exitcode).name}"
    return f"exited with code {exitcode}"


# Workers ignore SIGTERM, so multiprocessing's own clean-up at exit (terminate, then join
# without a timeout) would wait for ever for a worker whose loader was never closed, e.g. after
# a crash. This runs first (atexit runs the last registered first; torch registered its own).
_RUNNING: set[BaseProcess] = set()


@atexit.register
def _kill_leftover_workers() -> None:
    for process in list(_RUNNING):
        process.kill()
        process.join()
    _RUNNING.clear()


class ChunkLoader:
    def __init__(
        self,
        dataset: ImageDataset,  # the training images
        workers: int,  # decoding processes; 0 = decode in this process when a chunk is asked for
        pin_memory: bool,  # chunks in page-locked memory, for copies to a GPU that do not wait
    ) -> None:
        self.dataset, self.workers, self.pin_memory = dataset, workers, pin_memory
        self._chunks: Iterator[Chunk | HeroforgeError] | None = None
        self._workers: list[BaseProcess] = []

    def start(self, requests: Iterable[list[int]]) -> None:
        """Decode these chunks (lists of dataset indices) from now on; the chunks decoded ahead
        for a previous series are dropped and its workers stopped."""
        self.close()
        loader = DataLoader(
            _DecodedChunks(self.dataset),
            batch_size=None,  # an item is already a chunk
            sampler=requests,  # any iterable of keys works
            num_workers=self.workers,
            pin_memory=self.pin_memory,
            worker_init_fn=_leave_stopping_to_the_trainer,
            # Its own generator: DataLoader draws the workers' base seed from the global one
            # otherwise, and a (re)start would shift the training's random numbers.
            generator=torch.Generator(),
        )
        sigchld = signal.getsignal(signal.SIGCHLD)
        before = set(multiprocessing.active_children())
        # Blocked, not ignored, while the workers fork: a forked worker keeps the trainer's
        # handlers until it ignores the signals, and the trainer must not lose one meanwhile.
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:
            self._chunks = iter(loader)  # the workers start here
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        self._workers = [p for p in multiprocessing.active_children() if p not in before]
        _RUNNING.update(self._workers)
        if _is_torchs(signal.getsignal(signal.SIGCHLD)):
            # torch's handler raises wherever the main thread happens to be (in a collective,
            # in a checkpoint write); without it, a dead worker is reported by next(), which
            # checks the workers every few seconds while it waits for their images. (torch
            # installs it once per process: an earlier DataLoader may have put it there.)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL if _is_torchs(sigchld) else sigchld)

    def next(self) -> Chunk:
        """The next chunk of the series given to start()."""
        if self._chunks is None:
            raise RuntimeError("ChunkLoader.next() before start()")
        try:
            chunk = next(self._chunks)
        except Exception:
            # A dead worker shows as a RuntimeError, or as a broken connection when it died
            # while handing over a chunk: either way, say which process died and how.
            dead = self._dead_worker()
            if dead is None or dead.exitcode is None:
                raise
            self.close()
            raise OperationalError(
                f"data loader process {dead.pid} {_how_it_ended(dead.exitcode)}; out of memory? "
                "set data.workers lower (0 = decode in the training process)"
            ) from None
        if isinstance(chunk, HeroforgeError):
            raise chunk
        images, labels = chunk
        return images, labels

    def _dead_worker(self) -> BaseProcess | None:
        """A worker that has ended, waiting a little for one that is ending (its connections
        close a moment before it can be reaped: join waits for that)."""
        ended = multiprocessing.connection.wait([p.sentinel for p in self._workers], timeout=10)
        dead = next((p for p in self._workers if p.sentinel in ended), None)
        if dead is not None:
            dead.join()
        return dead

    def close(self) -> None:
        """Stop the workers and wait for them: dropping the iterator tells them to end; one
        that has not (the iterator is still referenced, by a traceback) is killed."""
        self._chunks = None
        for process in self._workers:
            if process.is_alive():
                process.kill()  # it ignores SIGTERM
            process.join()
            _RUNNING.discard(process)
        self._workers = []
