"""The order in which training sees the dataset: an endless series of shuffled epochs, and
the real images of each process's chunks of a minibatch.

Position k of the series (k counts images, not minibatches) is fixed by the seed alone, so a
resumed run continues at cur_nimg with exactly the images the uninterrupted run would have
used, without storing any sampler state. The images of the chunks to come are decoded ahead,
in data.workers processes (data/loader.py), in the order chosen here.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from heroforge.config import TrainConfig
from heroforge.data.dataset import ImageDataset
from heroforge.data.loader import ChunkLoader
from heroforge.runtime.dist import DistInfo


class EpochOrder:
    def __init__(self, num_items: int, seed: int) -> None:
        if num_items < 1:
            raise ValueError("the dataset is empty")
        self.num_items = num_items
        self.seed = seed
        self._cache: tuple[int, np.ndarray] | None = None

    def _epoch(self, epoch: int) -> np.ndarray:
        if self._cache is None or self._cache[0] != epoch:
            rng = np.random.default_rng([self.seed, epoch])
            self._cache = (epoch, rng.permutation(self.num_items))
        return self._cache[1]

    def indices(self, start: int, count: int) -> list[int]:
        """Dataset indices at positions start .. start + count - 1 of the series."""
        out = []
        for pos in range(start, start + count):
            epoch, offset = divmod(pos, self.num_items)
            out.append(int(self._epoch(epoch)[offset]))
        return out


class RealChunks:
    """A global minibatch is split in chunks of train.images_per_step images: chunk k covers
    images k*images_per_step ... (k+1)*images_per_step - 1 of it, and process r takes the
    chunks r, r + world, ... (batch and images_per_step stay fixed for a run)."""

    def __init__(
        self,
        dataset: ImageDataset,  # the training images
        tc: TrainConfig,  # batch, images per step, seed
        dist: DistInfo,  # this process's rank, the world size and its device
        workers: int,  # processes that decode chunks ahead (0 = when asked, in this one)
    ) -> None:
        self.dataset, self.device = dataset, dist.device
        self.per_chunk, self.batch = tc.images_per_step, tc.batch
        self.chunks = list(range(dist.rank, tc.batch // tc.images_per_step, dist.world))
        self.order = EpochOrder(len(dataset), tc.seed)
        self.loader = ChunkLoader(dataset, workers, pin_memory=self.device.type == "cuda")
        self._coming: tuple[int, int] | None = None  # (nimg, chunk) the loader gives next

    def chunk(self, nimg: int, chunk: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Chunk `chunk` of the minibatch that starts at nimg images: images in [-1, 1] and
        labels (None without labels), on the device."""
        if (nimg, chunk) != self._coming:  # the first step, a resume or a rollback
            series = self._series(nimg, chunk)
            self.loader.start(self._indices(n, k) for n, k in series)
        images, labels = self.loader.next()
        self._coming = self._following(nimg, chunk)
        img = self._to_device(images).to(torch.float32) / 127.5 - 1
        return img, self._to_device(labels) if self.dataset.c_dim > 0 else None

    def close(self) -> None:
        """Stop decoding ahead (the loader's workers end)."""
        self.loader.close()
        self._coming = None

    def _following(self, nimg: int, chunk: int) -> tuple[int, int]:
        """The (nimg, chunk) this process trains on after chunk `chunk` of minibatch nimg."""
        i = self.chunks.index(chunk) + 1
        if i < len(self.chunks):
            return nimg, self.chunks[i]
        return nimg + self.batch, self.chunks[0]

    def _indices(self, nimg: int, chunk: int) -> list[int]:
        """The dataset indices of chunk `chunk` of the minibatch that starts at nimg."""
        return self.order.indices(nimg + chunk * self.per_chunk, self.per_chunk)

    def _series(self, nimg: int, chunk: int) -> Iterator[tuple[int, int]]:
        """(nimg, chunk) of every chunk this process trains on, from this one on."""
        while True:
            yield nimg, chunk
            nimg, chunk = self._following(nimg, chunk)

    def _to_device(self, batch: torch.Tensor) -> torch.Tensor:
        """A plain copy to a GPU waits for everything queued before it (the previous phase);
        from pinned memory (the loader pins on GPUs) it is queued like a kernel."""
        return batch.to(self.device, non_blocking=self.device.type == "cuda")
