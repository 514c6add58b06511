"""A training process notes stop signals from its first moment (runtime.signals.hold_stops)."""

import subprocess
import sys

NOTE_THEN_REPORT = """
import os, signal
from heroforge.runtime.signals import hold_stops, received
assert received() is None
hold_stops()
os.kill(os.getpid(), signal.SIGTERM)
os.kill(os.getpid(), signal.SIGUSR1)
print(signal.Signals(received()).name)
"""


def test_a_held_stop_signal_is_noted_not_fatal():
    done = subprocess.run(
        [sys.executable, "-c", NOTE_THEN_REPORT], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "SIGTERM"  # the first one; the process lived on
