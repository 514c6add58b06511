"""The explorer's pictures: generators loaded once and kept, drawing off the event loop.

Loading a 512 px generator takes seconds and a slider sends a request per step, so the last few
generators stay loaded, keyed by run folder and by the snapshot its latest.json / best.json
name: a run that writes a new checkpoint is loaded again on the next request.

All drawing runs in one worker thread. The event loop stays free for the API (the queue page
keeps answering while a picture is drawn), and two pictures never compete for the CPU cores
that a training job needs.
"""

from __future__ import annotations

import asyncio
import io
import math
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
from PIL import Image

from heroforge import rundir

if TYPE_CHECKING:
    from heroforge.generate.model import LoadedGenerator

T = TypeVar("T")
MAX_SEEDS = 32  # per request: a page shows a handful; more is a slow request by mistake


def _stamp(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None


class ModelCache:
    """The last `size` generators loaded, by run folder and snapshot."""

    # The CPU by default: on a training machine the GPU memory belongs to the training job.
    # precision: as `heroforge generate --precision` (generate/model.py), refused here, before
    # the server listens. "auto" suits every device: the server starts without importing torch.
    def __init__(self, size: int = 2, device: str = "cpu", precision: str = "auto") -> None:
        if precision != "auto":
            from heroforge.generate.model import check_precision, parse_device

            check_precision(precision, parse_device(device))
        self.size = size
        self.device = device
        self.precision = precision
        self._loaded: OrderedDict[tuple, LoadedGenerator] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, run_dir: Path) -> LoadedGenerator:
        from heroforge.generate.model import load_generator

        folder = run_dir / rundir.CHECKPOINTS
        key = (run_dir, _stamp(folder / rundir.LATEST), _stamp(folder / rundir.BEST))
        with self._lock:  # held while loading: two requests must not load the same model twice
            model = self._loaded.pop(key, None)
            if model is None:
                model = load_generator(run_dir, self.device, self.precision)
            self._loaded[key] = model
            while len(self._loaded) > self.size:
                self._loaded.popitem(last=False)
            return model


class Painter:
    """Runs drawing functions in its single worker thread (see the module docstring)."""

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="heroforge-draw")
        return await asyncio.wrap_future(self._pool.submit(fn, *args))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


def png_bytes(image: np.ndarray) -> bytes:
    """uint8 [H, W, C] -> PNG; the fastest compression, since the picture is shown once."""
    buf = io.BytesIO()
    Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(
        buf, "PNG", compress_level=1
    )
    return buf.getvalue()


def _pictures(model: LoadedGenerator, seeds: list[int], truncation_psi: float) -> list[np.ndarray]:
    """uint8 [H, W, C] per seed, exactly as `heroforge generate` draws them."""
    from heroforge.generate.sample import generate_images

    images = [np.asarray(img) for img in generate_images(model, seeds, truncation_psi)]
    return [img[..., None] if img.ndim == 2 else img for img in images]


def draw_seeds(model: LoadedGenerator, seeds: list[int], truncation_psi: float) -> list[bytes]:
    """One PNG per seed."""
    return [png_bytes(img) for img in _pictures(model, seeds, truncation_psi)]


def draw_seed_grid(model: LoadedGenerator, seeds: list[int], truncation_psi: float) -> bytes:
    """The seeds' pictures tiled in one PNG (a single seed: just its picture)."""
    from heroforge.generate.output import make_grid

    images = _pictures(model, seeds, truncation_psi)
    return png_bytes(make_grid(images, cols=math.ceil(math.sqrt(len(images)))))


def draw_child(
    model: LoadedGenerator, a: int, b: int, weight: float, truncation_psi: float
) -> bytes:
    """The child of seeds a and b in blend mode (as `heroforge child`): weight 0 draws a, 1
    draws b. Only the child is drawn, not the a | child | b panel: a slider step costs one
    picture instead of three."""
    from heroforge.generate.child import check_child, child_ws
    from heroforge.generate.latents import resolve_keys
    from heroforge.generate.sample import synthesize

    weight = check_child(2, weight, "blend")
    key_a, key_b = resolve_keys(model, [a, b], truncation_psi)
    ws = child_ws(key_a.ws, key_b.ws, "blend", weight)
    return png_bytes(synthesize(model, ws.unsqueeze(0), "const")[0])
