"""How much a supervised job loses to hard kills: recovery time, kimg lost, effective throughput.

Trains the same tiny-cpu job twice under `heroforge manager run`: once uninterrupted, once with
the trainer killed (SIGKILL, no warning) every --kill-every seconds. Prints JSON lines:
- per kill: seconds from the kill to the resumed trainer training again (its "resumed" log
  line), and the work lost: the age of the newest checkpoint at the kill, in seconds and kimg;
- the summary: effective throughput as a fraction of the uninterrupted run, and the same
  fraction projected for a kill every 10 minutes from the measured recovery time and loss.

The CPU run is scaled down in time: checkpoints every --checkpoint-seconds, kills every
--kill-every seconds, keeping the ratio of a real run that checkpoints every minute and is
killed every 10 minutes. Images of random noise stand in for heroes: speed does not depend on
what the pictures show.

Usage: python benchmarks/manager_recovery.py [--kimg 5] [--kill-every 15] [--checkpoint-seconds 1.5]
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cpu_reference import environment

TEN_MINUTES = 600.0


def make_data(folder: Path) -> Path:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    for i in range(64):
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(
            folder / f"{i:03d}.png"
        )
    return folder


def supervisor(root: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "heroforge", "manager", "run", "--root", str(root),
         "--exit-when-idle"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
    )  # fmt: skip


def count_resumes(log: Path) -> int:
    """How many times the trainer said "resumed ... at X kimg" (once it has loaded its
    checkpoint and is about to train)."""
    try:
        return log.read_text(errors="replace").count("\nresumed ")
    except OSError:
        return 0


def run_job(root: Path, data: Path, kimg: float, checkpoint_s: float, kill_every: float | None):
    from heroforge.manager import open_queue, submit
    from heroforge.manager.progress import find_run_dir, latest_checkpoint
    from heroforge.manager.spec import spec_from_options

    queue = open_queue(root)
    spec = spec_from_options(data, "tiny-cpu", kimg, [
        "data.resolution=32", f"train.checkpoint_minutes={checkpoint_s / 60}",
        "train.checkpoint_kimg=1000", "train.tick_kimg=0.032", "job.poll_seconds=0.5",
        "job.retry_backoff_seconds=0", "job.max_failures=1000"])  # fmt: skip
    job_id = submit(queue, spec, allow_duplicate=True).id
    log = queue.get(job_id).dir / "train.log"
    start = time.time()
    sup = supervisor(root)
    kills: list[dict] = []
    resumed: list[float] = []  # when each "resumed" line appeared
    next_kill = start + kill_every if kill_every else None
    while sup.poll() is None:
        time.sleep(0.05)
        if count_resumes(log) > len(resumed):
            resumed.append(time.time())
        job = queue.get(job_id)
        if next_kill and time.time() >= next_kill and job.child_pid and job.state == "running":
            try:
                # the work since the newest checkpoint is what a kill throws away
                _, age = latest_checkpoint(find_run_dir(job.dir / "runs") / "checkpoints")
                os.kill(job.child_pid, signal.SIGKILL)
                kills.append({"time": time.time(), "work_lost_s": age or 0.0})
            except ProcessLookupError:
                pass
            next_kill = time.time() + kill_every
    wall = time.time() - start
    job = queue.get(job_id)
    if job.state != "done":
        raise SystemExit(f"job {job_id} ended {job.state}: {job.reason}")
    per_kill = []
    for kill in kills:
        after = next((t for t in resumed if t > kill["time"]), None)
        per_kill.append({
            "recovery_s": round(after - kill["time"], 2) if after else None,
            "work_lost_s": round(kill["work_lost_s"], 2),
        })  # fmt: skip
    return wall, per_kill


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kimg", type=float, default=5.0)
    parser.add_argument("--kill-every", type=float, default=15.0)
    parser.add_argument("--checkpoint-seconds", type=float, default=1.5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = make_data(Path(tmp) / "data")
        clean_s, _ = run_job(Path(tmp) / "clean", data, args.kimg, args.checkpoint_seconds, None)
        wall_s, kills = run_job(
            Path(tmp) / "killed", data, args.kimg, args.checkpoint_seconds, args.kill_every
        )
    sec_per_kimg = clean_s / args.kimg
    for i, kill in enumerate(kills):
        kimg_lost = round(kill["work_lost_s"] / sec_per_kimg, 4)
        print(json.dumps({"benchmark": "manager_recovery", "kill": i, **kill,
                          "kimg_lost": kimg_lost}), flush=True)  # fmt: skip
    recovery = [k["recovery_s"] for k in kills if k["recovery_s"] is not None]
    lost = [k["work_lost_s"] for k in kills]
    mean_recovery = sum(recovery) / max(len(recovery), 1)
    mean_lost_s = sum(lost) / max(len(lost), 1)
    # a real run killed every 10 minutes that checkpoints at the same ratio: the lost work
    # scales with the checkpoint interval, the recovery time does not
    scale = TEN_MINUTES / args.kill_every
    projected = 1 - (mean_recovery + mean_lost_s * scale) / TEN_MINUTES
    print(json.dumps({
        "benchmark": "manager_recovery", "kimg": args.kimg, "kills": len(kills),
        "kill_every_s": args.kill_every, "checkpoint_every_s": args.checkpoint_seconds,
        "uninterrupted_s": round(clean_s, 1), "interrupted_s": round(wall_s, 1),
        "effective_throughput": round(clean_s / wall_s, 3),
        "mean_recovery_s": round(mean_recovery, 2),
        "mean_work_lost_s": round(mean_lost_s, 2),
        "max_work_lost_s": round(max(lost, default=0.0), 2),
        "projected_checkpoint_every_s": round(args.checkpoint_seconds * scale, 1),
        "projected_throughput_kill_every_10min": round(projected, 3),
        **environment(return_memory=False),
    }), flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
