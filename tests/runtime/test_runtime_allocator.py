import os
import subprocess
import sys

import pytest
import torch

from heroforge.runtime.allocator import (
    TRAINING_TUNABLES,
    keep_freed_memory,
    release_freed_memory,
    training_allocator_env,
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc tuning is Linux-only")
def test_keep_freed_memory_applies_on_linux_and_allocations_still_work():
    assert keep_freed_memory() in (True, False)  # False only with a libc without mallopt
    assert keep_freed_memory() == keep_freed_memory()  # idempotent
    big = torch.ones(64, 1024, 1024)  # 256 MB: above the mmap threshold it disabled
    assert big.sum().item() == 64 * 1024 * 1024
    del big
    assert torch.zeros(64, 1024, 1024).abs().sum().item() == 0  # reused memory is zeroed


def test_keep_freed_memory_is_a_no_op_elsewhere(monkeypatch):
    monkeypatch.setattr(sys, "platform", "darwin")
    assert keep_freed_memory() is False


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc tuning is Linux-only")
def test_release_freed_memory_hands_a_large_free_heap_back_and_leaves_a_small_one():
    if not keep_freed_memory():  # large blocks from the heap, so that freeing leaves them there
        pytest.skip("this C library has no mallopt")
    blocks = [torch.ones(2 * 2**20) for _ in range(48)]  # 48 x 8 MB, written so resident
    assert sum(int(b[-1].item()) for b in blocks) == 48
    del blocks
    assert release_freed_memory(min_free_mb=10**6) is False  # not that much free: no trim
    before = _rss_mb()
    assert release_freed_memory() is True
    assert before - _rss_mb() > 200  # most of the 384 MB went back to the kernel
    assert torch.ones(2**20).sum().item() == 2**20  # and allocation still works


def test_release_freed_memory_is_a_no_op_elsewhere(monkeypatch):
    monkeypatch.setattr(sys, "platform", "darwin")
    assert release_freed_memory(min_free_mb=0) is False


def test_training_allocator_env_adds_only_what_is_missing(monkeypatch):
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr("platform.libc_ver", lambda: ("glibc", "2.36"))
    added = training_allocator_env({"PATH": "/bin"})
    assert added == {"PATH": "/bin", "GLIBC_TUNABLES": ":".join(TRAINING_TUNABLES)}
    own = {"GLIBC_TUNABLES": "glibc.malloc.arena_max=2:glibc.malloc.mmap_threshold=1"}
    # the user's own threshold stays; the missing setting is appended
    assert training_allocator_env(own)["GLIBC_TUNABLES"] == (
        "glibc.malloc.arena_max=2:glibc.malloc.mmap_threshold=1:glibc.malloc.hugetlb=1"
    )
    assert training_allocator_env(added) is None  # already started with them: no loop
    assert training_allocator_env({"HEROFORGE_MALLOC_TUNING": "OFF"}) is None
    monkeypatch.setattr("platform.libc_ver", lambda: ("glibc", "2.31"))
    assert training_allocator_env({}) is None  # too old to know huge pages
    monkeypatch.setattr("platform.libc_ver", lambda: ("", ""))
    assert training_allocator_env({}) is None  # musl and others: nothing to tune


def test_a_training_command_restarts_once_with_the_allocator_settings():
    # The same command runs again (same pid: exec) with the settings, and only once.
    if training_allocator_env({}) is None:
        pytest.skip("no glibc >= 2.35 here")
    code = (
        "import os, sys\n"
        "from heroforge.runtime.allocator import restart_with_training_allocator\n"
        "print('run', os.getpid(), flush=True)\n"
        "restart_with_training_allocator()\n"
        "print('tunables', os.environ['GLIBC_TUNABLES'])\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert len(out) == 3
    assert out[0] == out[1]
    assert out[0].startswith("run ")
    assert out[2] == "tunables " + ":".join(TRAINING_TUNABLES)
