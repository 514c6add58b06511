"""A stand-in for a training worker, started by the launcher in the tests.

argv: OUT_DIR PLAN_RANK0 PLAN_RANK1 ...; this rank's plan is one of
  stop      wait for a stop signal, then exit 75 (stopped with a checkpoint)
  slowstop  the same after 2 s of "writing the checkpoint"
  ignore    take no notice of any signal (like a peer blocked inside an NCCL collective)
  done      exit 0 at once (finished)
  fail      print a traceback and exit 3 at once
  kill      die of SIGKILL at once (the kernel's OOM killer)
fail and kill wait until every rank is ready. A rank writes OUT_DIR/envRANK.json (its rendezvous
variables) when it is ready for signals and OUT_DIR/gotRANK (the signal's name) when one comes.
"""

import json
import os
import signal
import sys
import time
from pathlib import Path

STOPS = {signal.SIGTERM, signal.SIGINT, signal.SIGUSR1}

out = Path(sys.argv[1])
rank = int(os.environ["RANK"])
plan = sys.argv[2 + rank]
signal.pthread_sigmask(signal.SIG_BLOCK, STOPS)  # taken by sigwait below: none can be missed
names = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "OMP_NUM_THREADS")
(out / f"env{rank}.json").write_text(json.dumps({name: os.environ[name] for name in names}))
if plan == "done":
    sys.exit(0)
# fail or die only once every rank is ready for signals, as a real failure comes mid-training
world = int(os.environ["WORLD_SIZE"])
while not all((out / f"env{other}.json").exists() for other in range(world)):
    time.sleep(0.01)
if plan == "fail":
    print("Traceback (most recent call last):", file=sys.stderr)
    print('  File "train.py", line 1, in step', file=sys.stderr)
    print(f"ValueError: boom on rank {rank}", file=sys.stderr)
    sys.exit(3)
if plan == "kill":
    os.kill(os.getpid(), signal.SIGKILL)
got = signal.sigwait(STOPS)
(out / f"got{rank}").write_text(signal.Signals(got).name)
while plan == "ignore":
    signal.sigwait(STOPS)
if plan == "slowstop":
    time.sleep(2)  # the checkpoint's write
sys.exit(75)
