import sys

import pytest
import torch

from heroforge.nets.cpu import keep_freed_memory, release_freed_memory


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
