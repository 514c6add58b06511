"""FID, KID and precision/recall from Inception features.

FID: Frechet distance between Gaussians fitted to real and generated features (Heusel et al.
2017). KID: unbiased squared MMD with the cubic polynomial kernel, averaged over subsets
(Binkowski et al. 2018). Precision/recall: the share of generated samples inside the real
k-NN manifold, and of real samples inside the generated one (Kynkaanniemi et al. 2019): low
recall is low diversity, the signature of mode collapse.
"""

from __future__ import annotations

import numpy as np


def mean_cov(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return features.mean(axis=0), np.cov(features, rowvar=False)


def _sqrt_psd(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def fid(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray) -> float:
    """||mu1 - mu2||^2 + Tr(C1 + C2 - 2 sqrt(C1 C2)), with the trace of the matrix square root
    taken from the symmetric form sqrt(C1) C2 sqrt(C1), which has the same eigenvalues."""
    root1 = _sqrt_psd(cov1)
    middle = root1 @ cov2 @ root1
    trace_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)).sum()
    value = np.square(mu1 - mu2).sum() + np.trace(cov1) + np.trace(cov2) - 2 * trace_sqrt
    return float(value)


def kid(real: np.ndarray, fake: np.ndarray, subsets: int = 100, subset_size: int = 1000) -> float:
    n = min(len(real), len(fake), subset_size)
    d = real.shape[1]
    rng = np.random.default_rng(0)
    total = 0.0
    for _ in range(subsets):
        x = fake[rng.choice(len(fake), n, replace=False)]
        y = real[rng.choice(len(real), n, replace=False)]
        a = (x @ x.T / d + 1) ** 3 + (y @ y.T / d + 1) ** 3
        b = (x @ y.T / d + 1) ** 3
        total += (a.sum() - np.diag(a).sum()) / (n - 1) - b.sum() * 2 / n
    return float(total / subsets / n)


def _radii(features: np.ndarray, k: int) -> np.ndarray:
    dist = _pairwise(features, features)
    return np.sort(dist, axis=1)[:, k]  # column 0 is the point itself


def _pairwise(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T
    return np.sqrt(np.clip(sq, 0, None))


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3) -> tuple[float, float]:
    real_r, fake_r = _radii(real, k), _radii(fake, k)
    cross = _pairwise(fake, real)
    precision = float((cross <= real_r[None, :]).any(axis=1).mean())
    recall = float((fake_r[None, :] >= cross.T).any(axis=1).mean())
    return precision, recall
