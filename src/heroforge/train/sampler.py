"""The order in which training sees the dataset: an endless series of shuffled epochs.

Position k of the series (k counts images, not minibatches) is fixed by the seed alone, so a
resumed run continues at cur_nimg with exactly the images the uninterrupted run would have
used, without storing any sampler state.
"""

from __future__ import annotations

import numpy as np


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
