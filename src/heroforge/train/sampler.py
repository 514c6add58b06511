"""The order in which training sees the dataset: an endless series of shuffled epochs, and
the real images of each process's chunks of a minibatch.

Position k of the series (k counts images, not minibatches) is fixed by the seed alone, so a
resumed run continues at cur_nimg with exactly the images the uninterrupted run would have
used, without storing any sampler state.
"""

from __future__ import annotations

import numpy as np
import torch

from heroforge.config import TrainConfig
from heroforge.data.dataset import ImageDataset
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

    def __init__(self, dataset: ImageDataset, tc: TrainConfig, dist: DistInfo) -> None:
        self.dataset, self.device = dataset, dist.device
        self.per_chunk = tc.images_per_step
        self.chunks = list(range(dist.rank, tc.batch // tc.images_per_step, dist.world))
        self.order = EpochOrder(len(dataset), tc.seed)

    def chunk(self, nimg: int, chunk: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Chunk `chunk` of the minibatch that starts at nimg images: images in [-1, 1] and
        labels (None without labels), on the device."""
        start = nimg + chunk * self.per_chunk
        items = [self.dataset[i] for i in self.order.indices(start, self.per_chunk)]
        img = self._to_device(torch.stack([x for x, _ in items])).to(torch.float32)
        img = img / 127.5 - 1
        with_labels = self.dataset.c_dim > 0
        labels = self._to_device(torch.stack([c for _, c in items])) if with_labels else None
        return img, labels

    def _to_device(self, batch: torch.Tensor) -> torch.Tensor:
        """A plain copy to a GPU waits for everything queued before it (the previous phase);
        from pinned memory it is queued like a kernel."""
        if self.device.type != "cuda":
            return batch.to(self.device)
        return batch.pin_memory().to(self.device, non_blocking=True)
