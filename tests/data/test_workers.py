"""Each prepare worker keeps to one core: no idle BLAS threads spinning beside it."""

from concurrent.futures import ProcessPoolExecutor

import numpy as np
from threadpoolctl import threadpool_info

from heroforge.data.workers import one_core_each


def _blas_threads() -> list[int]:
    np.linalg.lstsq(np.ones((4000, 6)), np.ones(4000), rcond=None)  # what segment.py calls
    return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]


def test_a_pool_worker_runs_numpys_blas_on_one_thread():
    with ProcessPoolExecutor(1, initializer=one_core_each) as pool:
        blas = pool.submit(_blas_threads).result()
    assert blas, "numpy's BLAS library was not found: the limit would do nothing"
    assert set(blas) == {1}
