"""Per-picture stages run one worker process per core; each worker keeps to its own core."""

from __future__ import annotations

from threadpoolctl import threadpool_limits


def one_blas_thread() -> threadpool_limits:
    """Linear algebra on one thread in this process, from now until the returned context
    exits (used without `with`: for good).

    Otherwise OpenBLAS keeps its idle threads spinning for a while after each call (a
    least-squares fit and a few matrix products per picture are enough); with one worker per
    core, each worker then eats into the others' cores. Measured on
    `benchmarks/prepare_speed.py`, 2 cores: 117 ms of CPU per picture before, 72 after.
    numpy and OpenCV (which ships its own OpenBLAS) are imported first: only loaded libraries
    can be limited, and a spawned worker has not loaded them yet.
    (OpenCV's own thread pool is left alone: limiting it gained nothing, and
    `cv2.setNumThreads` hangs in a child forked from a process that used that pool.)
    """
    import cv2  # noqa: F401
    import numpy  # noqa: F401

    return threadpool_limits(1, user_api="blas")


def one_core_each() -> None:
    """Process-pool initializer: one BLAS thread for the worker's whole life."""
    one_blas_thread()
