"""Training throughput on the CPU: s/kimg, img/s and peak RSS per configuration, JSON lines.

Runs the real training loop (all four phases, ADA, EMA) on random images for a few steps
after a warm-up, in a fresh process per configuration so that peak memory is its own.
Configurations (cpu_reference.speed_config): the tiny-cpu network with the official rules
(every phase, as before tiny-cpu was tuned for short runs), the official "auto" config at 64 px
(channel base 16384, batch 8, fp32), and that one with gradients accumulated over two chunks of
4 (batch_gpu 4: the same minibatch and minibatch-std groups of 4, half the activations at a
time), and "ref512": the reference 512 px config at its per-GPU batch of 8 (for a GPU). FLOPs
per image are those of G and D forward passes (nets summary).

--precision sets train.precision (default: the config's own, "auto"; the records say what it
resolved to). --device cuda times on a GPU (peak memory: the CUDA allocator's peak).
--compile sets train.compile (torch.compile of the main phases' synthesis and D).
--phase G_pl times only the path-length step (G's regulariser: mapping, synthesis, the inner
gradient with respect to ws and the backward of the penalty), its speed and peak memory.

Usage: python benchmarks/train_speed.py [--steps 6] [--only tiny|auto64|auto64-chunk4|ref512]
       [--precision auto|fp32|bf16|fp16] [--device cpu|cuda] [--phase all|G_pl] [--compile off|on]
"""

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONFIGS = ("tiny", "auto64", "auto64-chunk4", "ref512")  # see the docstring
DEFAULT_CONFIGS = CONFIGS[:3]  # ref512 is for a GPU: only when asked for
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def measure(
    name: str, steps: int, precision: str, device_name: str, phase: str, compile: str
) -> dict:
    import dataclasses

    import torch

    from cpu_reference import auto_config, noise_dataset, peak_fields, speed_config, training_flops
    from heroforge.nets.summary import summarize
    from heroforge.runtime.dist import DistInfo
    from heroforge.train.loop import Trainer, phases_at
    from heroforge.train.stats import TickStats

    cfg = auto_config(512) if name == "ref512" else speed_config(name)
    if precision != "auto":
        cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, precision=precision))
    if compile == "on":
        cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, compile=True))
    device = torch.device(device_name)
    with tempfile.TemporaryDirectory() as tmp:
        dataset = noise_dataset(Path(tmp), cfg.data.resolution)
        trainer = Trainer(cfg, dataset, Path(tmp) / "run", DistInfo(0, 1, device))
        stats = TickStats()
        step = trainer.step if phase == "all" else lambda _stats: path_length_step(trainer)
        for _ in range(2):  # warm-up: first-touch allocations, kernel selection
            step(stats)
        _synchronize(device)
        start, cpu_start = time.perf_counter(), os.times()
        for _ in range(steps):
            step(stats)
        _synchronize(device)
        window_seconds = time.perf_counter() - start
        seconds = window_seconds / steps
        cpu_end = os.times()
        system_s = (cpu_end.system - cpu_start.system) / steps
        # CPU time of this process: less sensitive than wall time to other processes' load
        cpu_s = (cpu_end.user + cpu_end.system - cpu_start.user - cpu_start.system) / steps
        peak_mb = _peak_mb(device)

        def run_step(step_index: int) -> None:
            trainer.progress.step = step_index
            trainer.step(stats)

        tc = cfg.train
        peak = {}
        if phase == "all" and device.type == "cpu":  # the fraction of this CPU's conv peak
            window_flops, per_step = training_flops(
                run_step,
                lambda step_index: phases_at(tc, step_index),
                range(2, 2 + steps),
                math.lcm(tc.pl_interval, tc.r1_interval),
            )
            peak = peak_fields(window_flops, window_seconds, steps, per_step, cfg.train.batch)
    summary = summarize(cfg)
    img_per_s = cfg.train.batch / seconds
    return {
        "benchmark": "train_speed",
        "config": name,
        "phase": phase,
        "precision_setting": precision,
        "precision": trainer.precision.name,
        "compile": cfg.train.compile,
        "device": device.type,
        "resolution": cfg.data.resolution,
        "batch": cfg.train.batch,
        "batch_gpu": cfg.train.images_per_step,
        "sec_per_step": round(seconds, 3),
        "sec_per_kimg": round(1000 / img_per_s, 1),
        "img_per_s": round(img_per_s, 3),
        "cpu_s_per_step": round(cpu_s, 3),  # all threads
        "system_s_per_step": round(system_s, 3),  # kernel time: page faults, mostly
        "forward_gflops_per_image": round((summary["G_flops"] + summary["D_flops"]) / 1e9, 2),
        "peak_rss_mb" if device.type == "cpu" else "peak_cuda_mb": round(peak_mb, 1),
        **peak,
        "threads": torch.get_num_threads(),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "glibc_tunables": os.environ.get("GLIBC_TUNABLES", ""),
    }


def path_length_step(trainer) -> None:
    """The path-length phase alone, as Trainer.step runs it (its gradients then dropped)."""
    import torch

    G = trainer.G  # noqa: N806
    G.requires_grad_(True)
    z = torch.randn([trainer.cfg.train.images_per_step, trainer.cfg.network.z_dim])
    trainer.loss.g_pl(z.to(trainer.dist.device), None, lambda loss: loss.backward())
    G.requires_grad_(False)
    G.zero_grad(set_to_none=True)


def _synchronize(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_mb(device) -> float:
    import torch

    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--only", choices=CONFIGS)
    parser.add_argument("--precision", choices=PRECISIONS, default="auto")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--phase", choices=("all", "G_pl"), default="all")
    parser.add_argument("--compile", choices=("off", "on"), default="off")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    options = [args.precision, args.device, args.phase, args.compile]
    if args.child:
        print(json.dumps(measure(args.child, args.steps, *options)))
        return
    for name in [args.only] if args.only else DEFAULT_CONFIGS:
        print(run_child(name, args.steps, options))


def run_child(name: str, steps: int, options: list[str]) -> str:
    """One configuration in a fresh process, with the allocator settings `heroforge train`
    starts itself with (runtime/allocator.py), so that the figures are what users get.
    options: precision, device, phase, compile."""
    from heroforge.runtime.allocator import training_allocator_env

    precision, device, phase, compile = options
    cmd = [sys.executable, __file__, "--child", name, "--steps", str(steps)]
    cmd += ["--precision", precision, "--device", device, "--phase", phase, "--compile", compile]
    env = training_allocator_env(os.environ) or dict(os.environ)
    return subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout.strip()


if __name__ == "__main__":
    main()
