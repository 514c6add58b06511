"""Test-only, on the workers' PYTHONPATH: a disk that needs 40 s to make a checkpoint durable.

Every fsync of a checkpoint's temp file (".ckpt-*.safetensors.*.tmp", before its rename) waits
40 s, more than torchrun's 30 s shutdown timeout: a launcher that gives up on a stopping worker
after a fixed time loses this checkpoint. When a slow write has ended, the worker leaves
"slow-write-done" in its working folder. The launcher itself (no RANK) is left alone.
"""

import os
import time

if "RANK" in os.environ:
    _fsync = os.fsync

    def _slow_fsync(fd: int) -> None:
        name = os.path.basename(os.readlink(f"/proc/self/fd/{fd}"))
        if name.startswith(".ckpt-") and ".safetensors." in name:
            time.sleep(40)
            _fsync(fd)
            with open("slow-write-done", "w") as done:
                done.write(name)
            return
        _fsync(fd)

    os.fsync = _slow_fsync
