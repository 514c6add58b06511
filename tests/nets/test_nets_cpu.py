import sys

import pytest
import torch

from heroforge.nets.cpu import keep_freed_memory


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
