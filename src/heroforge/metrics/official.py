"""The official StyleGAN2-ADA metrics of a model on its own (the official calc_metrics.py),
under the official names, as JSON lines shaped like the official metric-NAME.jsonl records.

    name          generated  reals               result keys
    fid50k_full   50000      the whole dataset   fid50k_full
    kid50k_full   50000      the whole dataset   kid50k_full (100 subsets of up to 1000)
    pr50k3_full   50000      the whole dataset   pr50k3_full_precision, pr50k3_full_recall (k=3)

"_full": every dataset image, without x-flips, as the official metrics read them. The features
are heroforge's (metrics/evaluate.py): InceptionV3 pool features for all three. The official
precision/recall uses VGG16 features instead, on up to 200000 reals and all 50000 fakes; here
it uses the Inception features of the first 5000 reals and fakes (a 5000 x 5000 distance
matrix; 50000 would need 20 GB), so its numbers are heroforge's, not comparable with the
official pr50k3 ones. FID and KID follow the official recipe.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from heroforge.data.dataset import ImageDataset
from heroforge.errors import UserError
from heroforge.metrics import stats
from heroforge.metrics.evaluate import fake_features, real_features
from heroforge.metrics.inception import InceptionFeatures
from heroforge.nets.generator import Generator

NUM_GEN = 50_000  # what every official *50k* metric generates
PR_ROWS = 5000  # feature rows per side for precision/recall (see above)
Features = tuple[np.ndarray, np.ndarray, np.ndarray]  # mean, covariance, rows


def _fid(name: str, reals: Features, fake: np.ndarray) -> dict[str, float]:
    mean_f, cov_f = stats.mean_cov(fake)
    return {name: stats.fid(reals[0], reals[1], mean_f, cov_f)}


def _kid(name: str, reals: Features, fake: np.ndarray) -> dict[str, float]:
    return {name: stats.kid(reals[2], fake, subsets=100, subset_size=1000)}


def _pr(name: str, reals: Features, fake: np.ndarray) -> dict[str, float]:
    precision, recall = stats.precision_recall(reals[2][:PR_ROWS], fake[:PR_ROWS], k=3)
    return {f"{name}_precision": precision, f"{name}_recall": recall}


METRICS: dict[str, Callable[[str, Features, np.ndarray], dict[str, float]]] = {
    "fid50k_full": _fid,
    "kid50k_full": _kid,
    "pr50k3_full": _pr,
}


def parse_metrics(text: str) -> list[str]:
    """ "fid50k_full,kid50k_full" -> the names, each checked; a one-line UserError otherwise."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in METRICS]
    if unknown or not names:
        shown = unknown[0] if unknown else repr(text)
        raise UserError(f"--metrics: {shown} is not one of {', '.join(METRICS)}")
    return list(dict.fromkeys(names))


def _format_time(seconds: float) -> str:
    """As the official records show it: 42s, 3m 05s, 2h 01m, 1d 03h."""
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h {s // 60 % 60:02d}m"
    return f"{s // 86400}d {s // 3600 % 24:02d}h"


def calc_metrics(
    G: Generator,  # noqa: N803
    dataset: ImageDataset,
    names: Sequence[str],
    snapshot: str,
    num_gen: int = NUM_GEN,
    inception: InceptionFeatures | None = None,
    device: torch.device | str = "cpu",
) -> list[dict[str, Any]]:
    """One official-shaped record per metric: results, metric, total_time, total_time_str,
    num_gpus, snapshot_pkl (here: the model it measured), timestamp; and num_gen, which the
    official records leave implied by the name (a smaller --num for a quick look)."""
    if num_gen < 2:
        raise UserError(f"--num {num_gen} is not allowed: at least 2 generated images")
    device = torch.device(device)
    features = inception or InceptionFeatures(None, device)
    started = time.time()
    reals = real_features(dataset, features, dataset.num_images)
    assert reals is not None  # one process: rank 0 always gets them
    fake = np.concatenate(fake_features(G.eval(), features, num_gen, device))
    shared = time.time() - started  # the features serve every metric
    records = []
    for name in names:
        begun = time.time()
        results = {key: float(value) for key, value in METRICS[name](name, reals, fake).items()}
        total = shared + time.time() - begun
        records.append(
            {
                "results": results,
                "metric": name,
                "total_time": total,
                "total_time_str": _format_time(total),
                "num_gpus": 1,
                "snapshot_pkl": snapshot,
                "timestamp": time.time(),
                "num_gen": num_gen,
            }
        )
    return records
