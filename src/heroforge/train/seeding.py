"""Randomness that does not depend on how the work is split.

Every random draw of training (latents, noise inputs, style mixing, augmentation) comes from
the global torch generator seeded per (run seed, step, phase, chunk), where a chunk is a fixed
slice of the global minibatch. So one process with gradient accumulation and N processes with
one chunk each draw the same numbers, and a resumed run draws exactly what the uninterrupted
run would have: no generator state has to survive a crash.
"""

from __future__ import annotations

import hashlib
import os
import random

import numpy as np
import torch


def chunk_seed(seed: int, step: int, phase: int, chunk: int) -> int:
    digest = hashlib.blake2b(f"{seed}/{step}/{phase}/{chunk}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & (2**63 - 1)


def seed_chunk(seed: int, step: int, phase: int, chunk: int) -> None:
    torch.manual_seed(chunk_seed(seed, step, phase, chunk))


def seed_everything(seed: int) -> None:
    """For initialisation: networks' weights and anything else drawn before the first step."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def set_deterministic(enabled: bool, cuda: bool = False) -> None:
    """Bit-exact runs: deterministic kernels and no cuDNN autotuning on GPUs.

    On CPUs this is exact (the resume tests check it). On GPUs it is best effort: cuBLAS is
    deterministic only with a fixed workspace (set before the first matmul, which reads it),
    and some kernels have no deterministic CUDA version at all (grid_sample's backward, used
    by ADA's geometric transforms): there they warn instead of stopping the run.
    TF32 stays off either way, as in the official code: its 10-bit mantissa in matmuls and
    convolutions (fp32 blocks, the FID network) would make metrics incomparable with
    published ones."""
    if enabled and cuda:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(enabled, warn_only=cuda)
    torch.backends.cudnn.benchmark = not enabled
    torch.backends.cudnn.deterministic = enabled
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
