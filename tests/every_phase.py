"""Shared by the tests that train (a plain module, not a conftest: spawned test processes
import it too, and there `conftest` names another file)."""

# The tiny-cpu preset trains for quick learning (batch 4, no path length, style mixing or ADA).
# Tests of the loop's machinery (exact resume, processes vs accumulation, precision, memory)
# must run every phase and every piece of state, so they add these back.
EVERY_PHASE = [
    "train.batch=8",
    "train.pl_weight=2",
    "train.style_mixing=0.9",
    "augment.mode=ada",
    "augment.speed_kimg=5",  # p moves within a test's few steps
]
