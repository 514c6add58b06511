"""The signals that ask heroforge's training to stop with a checkpoint: SIGTERM (systemd, SLURM,
a spot notice turned into a signal), SIGINT (Ctrl-C) and SIGUSR1 (what schedulers such as
SLURM's --signal often send as their warning). The launcher forwards them, the trainer acts on
them, and the data-loading processes ignore them (the trainer shuts those down itself).

A training process notes them from its first moment to its last (hold_stops): before the
trainer's own handler is in place (imports, loading a checkpoint, the rendezvous) and after it
is gone (waiting while rank 0 writes the stop checkpoint), the default action would kill the
process, and with it the other processes' collectives and the stop checkpoint.
"""

from __future__ import annotations

import signal
from types import FrameType

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)
_received: list[int] = []  # the stop signals noted by hold_stops' handler, in order


def hold_stops() -> None:
    """From now on, in this process, a stop signal is noted (received()) and nothing more,
    except where a handler of its own replaces this one for a while (the trainer's)."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, _note)


def _note(signum: int, _frame: FrameType | None) -> None:
    _received.append(signum)


def received() -> int | None:
    """The first stop signal hold_stops noted; None if there was none."""
    return _received[0] if _received else None
