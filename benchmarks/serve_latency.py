"""How fast `heroforge serve` answers while a CPU training job runs (issue goal: < 200 ms).

Starts the real server (uvicorn, its own process) on a manager root holding two jobs:
- job 1, trained during the measurement by a real `heroforge manager run` (supervisor and
  trainer processes, the trainer using every core), ticking every 0.032 kimg so that its
  stats.jsonl grows and the queue file takes a heartbeat every poll;
- job 2, a finished "long run" whose stats.jsonl holds --long-ticks ticks (25,000 kimg at
  4 kimg per tick is 6,250): the worst case of the job page's curves.
A client polls the API as pages do (one request after another, --pause seconds apart, on a
kept-alive connection): first with the machine idle, then with job 1 training. Prints one
JSON line per phase and endpoint: p50 / p95 / max in ms.

Usage: python benchmarks/serve_latency.py [--requests 200] [--long-ticks 6250] [--pause 0.02]
"""

import argparse
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from cpu_reference import environment

GOAL_MS = 200.0
MAX_POINTS = 600  # what the job page asks for


def make_data(folder: Path) -> Path:
    """Random 32 px pictures: the speed of training does not depend on what they show."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    for i in range(64):
        pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{i:03d}.png")
    return folder


def long_run(job_dir: Path, ticks: int) -> None:
    """A run folder whose stats hold `ticks` ticks shaped like the trainer's, plus a metric
    and a verdict every 50 ticks."""
    run = job_dir / "runs" / "00000-long"
    run.mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"total_kimg": ticks * 4.0}))
    rng = random.Random(0)
    lines = []
    for tick in range(ticks):
        kimg = round((tick + 1) * 4.0, 3)
        record = {"time": 1.8e9 + tick * 600, "tick": tick, "kimg": kimg, "step": tick * 62}
        record.update({"sec_per_kimg": 150 + rng.random(), "img_per_s": 6.6, "eta_s": 1e6})
        record.update({"augment_p": rng.random() * 0.6, "rt": 0.6 + rng.random() * 0.1})
        record.update({"elapsed_s": tick * 600.0, "rss_mb": 9000.0})
        for key in ("loss/G", "scores/fake", "loss/pl", "pl_mean", "loss/D", "loss/D_fake"):
            record[key] = round(rng.gauss(1, 0.3), 6)
        record.update({"scores/real": rng.gauss(0, 1), "loss/r1": rng.random() * 0.01})
        lines.append(json.dumps(record))
        if tick % 50 == 49:
            metric = {"event": "metrics", "kimg": kimg, "fid": 50 / (1 + tick / 500)}
            verdict = {"event": "verdict", "kimg": kimg, "verdict": "stable", "reasons": []}
            lines += [json.dumps(metric), json.dumps(verdict)]
    (run / "stats.jsonl").write_text("\n".join(lines) + "\n")


def start_server(root: Path) -> tuple[subprocess.Popen, str]:
    code = (
        "import sys; from pathlib import Path; from heroforge.commands.serve import serve_command; "
        "serve_command(root=Path(sys.argv[1]), host='127.0.0.1', port=0, token=None, "
        "prepared=None)"
    )
    server = subprocess.Popen(
        [sys.executable, "-c", code, str(root)], stdout=subprocess.PIPE, text=True
    )
    line = server.stdout.readline()
    match = re.search(r"(http://127\.0\.0\.1:\d+)/", line)
    if not match:
        server.kill()
        raise SystemExit(f"the server did not start: {line!r}")
    return server, match.group(1)


def supervisor(root: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}  # every core
    return subprocess.Popen(
        [sys.executable, "-m", "heroforge", "manager", "run", "--root", str(root)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**env, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip


def measure(client: httpx.Client, paths: list[str], requests: int, pause: float) -> dict:
    """Round-robin over paths; milliseconds per request, by path."""
    times: dict[str, list[float]] = {p: [] for p in paths}
    for _ in range(requests):
        for path in paths:
            start = time.perf_counter()
            response = client.get(path)
            times[path].append((time.perf_counter() - start) * 1000)
            response.raise_for_status()
            time.sleep(pause)
    return times


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def report(phase: str, times: dict, extra: dict) -> None:
    for path, values in times.items():
        p95 = percentile(values, 0.95)
        print(json.dumps({
            "benchmark": "serve_latency", "phase": phase, "endpoint": path, "n": len(values),
            "p50_ms": round(percentile(values, 0.5), 1), "p95_ms": round(p95, 1),
            "max_ms": round(max(values), 1), "goal_ms": GOAL_MS, "meets_goal": p95 < GOAL_MS,
            **extra,
        }), flush=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200, help="per endpoint and phase")
    parser.add_argument("--long-ticks", type=int, default=6250)
    parser.add_argument("--pause", type=float, default=0.02, help="seconds between requests")
    args = parser.parse_args()

    from heroforge.manager import open_queue, submit
    from heroforge.manager.spec import spec_from_options

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "root"
        data = make_data(Path(tmp) / "data")
        queue = open_queue(root)
        fast = ["train.tick_kimg=0.032", "train.checkpoint_kimg=0.256", "job.poll_seconds=0.5"]
        live = submit(queue, spec_from_options(data, "tiny-cpu", 1000, fast))
        done = submit(queue, spec_from_options(data, "tiny-cpu", 1000, []), allow_duplicate=True)
        long_run(done.dir, args.long_ticks)
        queue.cancel(done.id)  # final: the supervisor leaves it alone
        server, base = start_server(root)
        sup = None
        try:
            with httpx.Client(base_url=base, timeout=30) as client:
                long_stats = f"/api/jobs/{done.id}/stats"
                paths = ["/api/jobs", f"{long_stats}?max_points={MAX_POINTS}", long_stats]
                measure(client, paths, 3, 0)  # warm-up: imports, first parse of the long file
                idle = measure(client, paths, args.requests, args.pause)
                load = round(os.getloadavg()[0], 2)  # other users of the machine count too
                report("idle", idle, {"long_ticks": args.long_ticks, "load_average_1min": load})

                sup = supervisor(root)
                live_stats = f"/api/jobs/{live.id}/stats"
                deadline = time.time() + 300
                while time.time() < deadline:  # until the trainer is past its start-up
                    response = client.get(live_stats)
                    if response.status_code == 200 and response.json()["count"] >= 3:
                        break
                    time.sleep(0.5)
                else:
                    raise SystemExit("the training job did not start ticking within 300 s")
                before = response.json()["count"]
                busy = measure(client, [*paths, live_stats], args.requests, args.pause)
                during = client.get(live_stats).json()["ticks"][before:]
                spk = [t["sec_per_kimg"] for t in during]
                report("training", busy, {
                    "long_ticks": args.long_ticks, "ticks_trained_meanwhile": len(during),
                    "train_sec_per_kimg": round(sum(spk) / len(spk), 1) if spk else None,
                    "load_average_1min": round(os.getloadavg()[0], 2),
                    **environment(return_memory=False),
                })  # fmt: skip
        finally:
            if sup is not None:
                sup.send_signal(signal.SIGTERM)  # the trainer checkpoints and stops
                sup.wait(timeout=300)
            server.terminate()
            server.wait(timeout=60)


if __name__ == "__main__":
    main()
