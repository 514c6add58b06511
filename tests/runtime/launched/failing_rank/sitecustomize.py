"""Test-only, on the workers' PYTHONPATH: rank 1 fails in its fourth training step, as a
worker whose disk or GPU broke would; rank 0 is left alone (and meets the loss in a collective).
"""

import os

if os.environ.get("RANK") == "1":
    from heroforge.train.loop import Trainer

    _step = Trainer.step
    _steps = [0]

    def _failing_step(self, tick_stats):
        _steps[0] += 1
        if _steps[0] == 4:
            raise RuntimeError("the GPU fell off the bus")
        return _step(self, tick_stats)

    Trainer.step = _failing_step
