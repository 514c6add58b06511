"""The signals that ask heroforge's training to stop with a checkpoint: SIGTERM (systemd, SLURM,
a spot notice turned into a signal), SIGINT (Ctrl-C) and SIGUSR1 (what schedulers such as
SLURM's --signal often send as their warning). The launcher forwards them, the trainer acts on
them, and the data-loading processes ignore them (the trainer shuts those down itself)."""

import signal

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)
