"""Each prepare worker keeps to one core: no idle BLAS threads spinning beside it."""

import os
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import pytest
from threadpoolctl import threadpool_info, threadpool_limits

import heroforge.data.prepare as prep
from helpers.files import copy_synth_pictures
from heroforge.config import load_config
from heroforge.data.workers import one_core_each

CFG = load_config("superheroes-512", ["prepare.size=64", "prepare.human_cues=colour"]).prepare
_analyse = prep.process


def _numpy_blas_threads() -> int:
    """Threads of numpy's own BLAS (OpenCV ships another one, which must not stand in)."""
    import numpy  # noqa: F401  (loaded, so that threadpoolctl can see it)

    libs = [lib for lib in threadpool_info() if "numpy" in lib["filepath"]]
    assert libs, "numpy's BLAS library was not found: the limit would do nothing"
    return libs[0]["num_threads"]


def _analyse_and_log(source, *args):
    """prepare's per-picture function, noting the BLAS threads it ran with."""
    with open(os.environ["BLAS_THREADS_LOG"], "a") as log:
        log.write(f"{_numpy_blas_threads()}\n")
    return _analyse(source, *args)


@pytest.fixture
def two_threads():
    """numpy's BLAS on two threads, as on any machine with 2 cores or more."""
    with threadpool_limits(2, user_api="blas"):
        yield


@pytest.mark.parametrize("start", ["fork", "spawn", "forkserver"])
def test_a_pool_worker_runs_numpys_blas_on_one_thread(two_threads, start):
    # a spawned worker runs the initializer before it has imported numpy
    pool = ProcessPoolExecutor(1, mp_context=get_context(start), initializer=one_core_each)
    with pool:
        assert pool.submit(_numpy_blas_threads).result() == 1


@pytest.mark.parametrize("workers", [1, 2])
def test_prepare_analyses_every_picture_with_one_blas_thread(
    two_threads, workers, synth_set, tmp_path, monkeypatch
):
    raw = copy_synth_pictures(synth_set, tmp_path / "raw", 8)
    log = tmp_path / "threads.log"
    monkeypatch.setenv("BLAS_THREADS_LOG", str(log))
    monkeypatch.setattr(prep, "process", _analyse_and_log)
    prep.prepare(raw, tmp_path / "out", CFG, workers=workers)
    assert log.read_text().split() == ["1"] * 8
    assert _numpy_blas_threads() == 2  # the caller's own setting is back
