"""Metrics of a generator against its dataset: FID, optional KID, precision and recall.

Real-image features depend only on the dataset and the Inception weights, so they are cached
(under the user's cache folder, keyed by the dataset fingerprint): the first FID of a run pays
for them once, every later one only generates.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch

from heroforge.config import MetricsConfig
from heroforge.data.dataset import ImageDataset
from heroforge.fileio import atomic_file
from heroforge.metrics import stats
from heroforge.metrics.inception import InceptionFeatures
from heroforge.nets.generator import Generator
from heroforge.runtime.dist import from_rank0

KEEP_ROWS = 10_000  # feature rows kept for KID and precision/recall (mean/cov use all)
BATCH = 32


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "heroforge" / "metrics"


def _real_cache_path(dataset: ImageDataset, inception: InceptionFeatures, count: int) -> Path:
    key = f"{dataset.fingerprint()}/{inception.path.stat().st_size}/{count}"
    return cache_dir() / f"reals-{hashlib.sha256(key.encode()).hexdigest()[:20]}.npz"


def _load_cached(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    try:
        with np.load(path) as cached:
            return cached["mean"], cached["cov"], cached["rows"]
    except (OSError, KeyError, ValueError):
        return None  # not cached yet, or a damaged cache file: recompute


@torch.no_grad()
def real_features(
    dataset: ImageDataset, inception: InceptionFeatures, count: int, rank: int = 0, world: int = 1
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(mean, cov, up to KEEP_ROWS feature rows) of the first `count` dataset images, from the
    cache when rank 0 has them there. Otherwise every process computes every world-th batch
    and rank 0 gathers, caches and returns them (the others get None)."""
    count = min(count, dataset.num_images)
    path = _real_cache_path(dataset, inception, count)
    cached = _load_cached(path) if rank == 0 else None
    if from_rank0(cached is not None, world):
        return cached
    feats = []
    for index, start in enumerate(range(0, count, BATCH)):
        if index % world != rank:
            feats.append(np.empty(0))
            continue
        batch = torch.stack([dataset[i][0] for i in range(start, min(count, start + BATCH))])
        feats.append(inception(batch).numpy())
    rows = _gather_batches(feats, world)
    if rows is None:
        return None
    mean, cov = stats.mean_cov(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path, durable=False) as f:
        np.savez(f, mean=mean, cov=cov, rows=rows[:KEEP_ROWS].astype(np.float32))
    return mean, cov, rows[:KEEP_ROWS]


@torch.no_grad()
def fake_features(
    G: Generator,  # noqa: N803
    inception: InceptionFeatures,
    count: int,
    device: torch.device,
    seed: int = 123,
    rank: int = 0,
    world: int = 1,
) -> list[np.ndarray]:
    """Features of `count` images of G for latents from a fixed seed (comparable over time),
    one array per batch of BATCH. With several processes, process `rank` computes every
    world-th batch (the others are empty); every process draws all latents, so each batch
    gets the same ones however the work is split."""
    gen = torch.Generator().manual_seed(seed)
    feats = []
    for index, start in enumerate(range(0, count, BATCH)):
        n = min(BATCH, count - start)
        z = torch.randn([n, G.z_dim], generator=gen).to(device)
        c = None
        if G.c_dim:
            c = torch.nn.functional.one_hot(torch.randint(G.c_dim, [n], generator=gen), G.c_dim)
            c = c.float().to(device)
        mine = index % world == rank
        feats.append(inception(G(z, c, noise_mode="const")).numpy() if mine else np.empty(0))
    return feats


def _gather_batches(feats: list[np.ndarray], world: int) -> np.ndarray | None:
    """The processes' batches in order on rank 0 (None elsewhere); as is in one process."""
    if world == 1:
        return np.concatenate(feats)
    import torch.distributed as dist

    every: list | None = [None] * world if dist.get_rank() == 0 else None
    dist.gather_object(feats, every, dst=0)
    if every is None:
        return None
    return np.concatenate([every[i % world][i] for i in range(len(feats))])


def evaluate(
    G: Generator,  # noqa: N803
    dataset: ImageDataset,
    cfg: MetricsConfig,
    device: torch.device,
    num_images: int | None = None,
    rank: int = 0,
    world: int = 1,
) -> dict[str, float | int] | None:
    """FID (and KID when cfg.kid) of G's images against the dataset, plus precision/recall.

    With several processes (torch.distributed), every one must call this: each generates
    its share of the images (and of the real ones, when they are not cached yet), and rank 0
    gathers the features and returns the result (the others None). The result is the same
    as one process's."""
    inception = InceptionFeatures(cfg.inception or None, device)
    count = num_images or cfg.fid_images
    reals = real_features(dataset, inception, count, rank, world)
    fake = _gather_batches(fake_features(G, inception, count, device, 123, rank, world), world)
    if reals is None or fake is None:
        return None
    mean_r, cov_r, rows_r = reals
    mean_f, cov_f = stats.mean_cov(fake)
    result: dict[str, float | int] = {
        "fid": round(stats.fid(mean_r, cov_r, mean_f, cov_f), 4),
        "num_real": min(count, dataset.num_images),
        "num_fake": count,
    }
    rows_f = fake[:KEEP_ROWS]
    if cfg.kid:
        result["kid"] = round(stats.kid(rows_r, rows_f), 6)
    precision, recall = stats.precision_recall(rows_r[:5000], rows_f[:5000])
    result["precision"], result["recall"] = round(precision, 4), round(recall, 4)
    return result
