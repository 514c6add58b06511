"""What the first run on a GPU must check, in one command: JSON lines, one record per finding.

Three parts (--parts, comma-separated; all by default):
- speed: the reference 512 px config timed by train_speed.py (a fresh process per training
  precision, the allocator settings `heroforge train` uses), s/kimg and peak CUDA memory.
- waits: a few steps of the official "auto" config at 64 px (every phase, ADA) under
  torch.profiler, counting the host's waits on the GPU: stream/device/event synchronisations
  and synchronous copies, each traced to the heroforge line it came from. The one planned wait
  is ADA's r_t, read every augment.interval steps (augment/ada.py); any other is a bug. Copies
  from pageable host memory to the GPU are counted too (they may block the host). On the CPU
  every op runs on the host, so there is nothing to wait for: the record says "not applicable".
- fid: FID of one G_ema rendered in each precision (fp32, bf16, fp16: fp16 on CUDA only) on the
  same latents, with the difference to fp32. The generator is --model (with its data, --data),
  else a tiny run trained here on --data (default: the demo's synthetic heroes) with
  reduced-precision blocks, so that the precisions differ.

The CUDA code paths cannot run on the machines this project is built on (no GPU): they were
written from torch's profiler documentation and reviewed by reading; the CPU paths are tested
(tests/test_gpu_first_run.py). The README's "First run on a GPU" says what to look for.

Usage: python benchmarks/gpu_first_run.py [--device cuda|cpu] [--parts speed,waits,fid]
       [--train-precisions fp16,bf16] [--speed-steps 6] [--wait-steps 8]
       [--model M] [--data D] [--kimg 12] [--images 500] [--precisions fp32,bf16,fp16]
       [--out DIR (keep the data and the tiny run)]
"""

import argparse
import dataclasses
import json
import re
import tempfile
from collections import Counter
from pathlib import Path

import torch

PARTS = ("speed", "waits", "fid")
# runtime calls that make the host wait for the GPU (cudaMemcpy is the synchronous copy; an
# .item() or .cpu() shows up as cudaMemcpyAsync followed by cudaStreamSynchronize)
WAIT_CALLS = ("cudaStreamSynchronize", "cudaDeviceSynchronize", "cudaEventSynchronize")
WAIT_CALLS += ("cudaMemcpy",)
PLANNED_WAIT = "heroforge/augment/ada.py"  # r_t, read every augment.interval steps
HEROFORGE_FRAME = re.compile(r"heroforge/[\w/]+\.py\(\d+\): \w+")
WINDOW_END = "gpu_first_run: end of the profiled steps"  # its synchronize is ours, not training's


def record(part: str, device: str, **fields) -> None:
    print(json.dumps({"benchmark": "gpu_first_run", "part": part, "device": device, **fields}))


def speed(device: str, precisions: list[str], steps: int) -> None:
    """The reference config's training speed, per training precision (train_speed.py's
    record, in a fresh process each)."""
    from train_speed import run_child

    for precision in precisions:
        line = run_child("ref512", steps, [precision, device, "all", "off"])
        fields = json.loads(line)
        del fields["benchmark"], fields["device"]  # this record's own
        record("speed", device, measured_by="train_speed.py", **fields)


def waits(device: str, precisions: list[str], steps: int) -> None:
    if device != "cuda":
        record(
            "waits",
            device,
            status="not applicable",
            why="the CPU runs every op on the host: nothing to wait for",
        )
        return
    for precision in precisions:
        record("waits", device, **profile_waits(precision, steps))


def profile_waits(precision: str, steps: int) -> dict:
    """Host waits in `steps` training steps of the auto 64 px config on CUDA (after two of
    warm-up), with where each came from. CUDA only: reviewed by reading."""
    from torch.profiler import ProfilerActivity, profile, record_function

    from cpu_reference import auto_config
    from heroforge.runtime.dist import DistInfo
    from heroforge.train.loop import Trainer
    from heroforge.train.stats import TickStats

    cfg = auto_config(64)
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, precision=precision))
    with tempfile.TemporaryDirectory() as tmp:
        dataset = random_images(Path(tmp) / "images", cfg.data.resolution)
        trainer = Trainer(cfg, dataset, Path(tmp) / "run", DistInfo(0, 1, torch.device("cuda")))
        stats = TickStats()
        for _ in range(2):  # warm-up: allocations, kernel selection
            trainer.step(stats)
        torch.cuda.synchronize()
        activities = [ProfilerActivity.CPU, ProfilerActivity.CUDA]
        with profile(activities=activities, with_stack=True) as prof:
            for _ in range(steps):
                trainer.step(stats)
            with record_function(WINDOW_END):  # inside: every device-side copy is recorded
                torch.cuda.synchronize()
    events = list(prof.events())
    found = count_waits(events)
    found["sources"].pop(WINDOW_END, None)
    unplanned = sum(n for where, n in found["sources"].items() if PLANNED_WAIT not in where)
    planned = sum(n for where, n in found["sources"].items() if PLANNED_WAIT in where)
    return {
        "config": "auto64",
        "precision": trainer.precision.name,
        "steps": steps,
        "ada_interval": cfg.augment.interval,
        "planned_waits_per_step": round(planned / steps, 3),
        "expected_planned_per_step": round(1 / cfg.augment.interval, 3),
        "unplanned_waits_per_step": round(unplanned / steps, 3),
        "sources": found["sources"],
        "dtoh_copies_per_step": round(found["dtoh_copies"] / steps, 3),
        "pageable_htod_copies_per_step": round(found["pageable_htod_copies"] / steps, 3),
        "verdict": "ok"
        if unplanned == found["pageable_htod_copies"] == 0
        else "the host may wait on the GPU: see sources and the pageable copies",
    }


def count_waits(events: list) -> dict:
    """Host waits among profiler events (torch's FunctionEvent: name, thread, time_range,
    stack, device_type), each traced to the innermost heroforge frame around it; and the
    device-side copies to the host and from pageable host memory."""
    on_host = [e for e in events if e.device_type == torch.autograd.DeviceType.CPU]
    sources: Counter[str] = Counter()
    for wait in (e for e in on_host if e.name in WAIT_CALLS):
        sources[source_of(wait, on_host)] += 1
    on_device = [e.name for e in events if e.device_type != torch.autograd.DeviceType.CPU]
    return {
        "sources": dict(sources),
        "dtoh_copies": sum(name.startswith("Memcpy DtoH") for name in on_device),
        "pageable_htod_copies": sum(name.startswith("Memcpy HtoD (Pageable") for name in on_device),
    }


def source_of(wait, on_host: list) -> str:
    """ "heroforge/FILE.py(LINE): FUNCTION" of the innermost heroforge frame that encloses the
    wait in time on its thread: Python frames are events of their own with with_stack=True
    (torch 2.5 and later), or the .stack of the enclosing ops (earlier releases)."""
    start, end = wait.time_range.start, wait.time_range.end
    best, best_start = "", float("-inf")
    for event in on_host:
        if event.thread != wait.thread or event is wait:
            continue
        if not event.time_range.start <= start <= end <= event.time_range.end:
            continue
        frames = [event.name, *(event.stack or [])[::-1]]  # stack: innermost frame first
        for frame in frames:
            match = HEROFORGE_FRAME.search(frame)
            where = match.group(0) if match else frame if frame == WINDOW_END else ""
            if where and event.time_range.start >= best_start:
                best, best_start = where, event.time_range.start
    return best or "outside heroforge"


def random_images(folder: Path, resolution: int):
    """32 random pictures: training speed and waits do not depend on what they show."""
    import numpy as np
    from PIL import Image

    from heroforge.data.dataset import ImageDataset

    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(32):
        pixels = rng.integers(0, 256, (resolution, resolution, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{i:03d}.png")
    return ImageDataset(folder, resolution=resolution)


def fid(device: str, args: argparse.Namespace, work: Path) -> None:
    """FID of one G_ema in each precision, on the same latents and real images."""
    from heroforge.config import load_config
    from heroforge.data.dataset import ImageDataset
    from heroforge.generate.model import load_generator
    from heroforge.metrics.evaluate import evaluate

    data = Path(args.data) if args.data else demo_data(work)
    model = Path(args.model) if args.model else train_tiny(data, args.kimg, work)
    metrics = load_config("tiny-cpu").metrics
    fp32 = None
    for precision in args.precisions.split(","):
        gen = load_generator(model, device, precision)  # one-line error: fp16 on a CPU
        dataset = ImageDataset(data, resolution=gen.G.img_resolution, use_labels=gen.c_dim > 0)
        scores = evaluate(gen.G, dataset, metrics, torch.device(device), args.images)
        assert scores is not None  # one process: rank 0 always has the result
        fp32 = scores["fid"] if precision == "fp32" else fp32
        record(
            "fid",
            device,
            model=str(model),
            network=gen.network,
            precision=gen.precision,
            images=args.images,
            fid=scores["fid"],
            fid_minus_fp32=None if fp32 is None else round(scores["fid"] - fp32, 4),
        )


def demo_data(work: Path) -> Path:
    from train_learning import build_data

    return build_data(work, one_picture=False)


def train_tiny(data: Path, kimg: float, work: Path) -> Path:
    """A tiny-cpu run whose top blocks are reduced-precision ones (tiny-cpu has none), so
    that rendering precisions differ; it trains on CUDA when there is one."""
    from heroforge.config import load_config
    from heroforge.train import run as training

    cfg = load_config("tiny-cpu", ["network.num_fp16_res=4"])
    run_dir, _ = training.start(data, cfg, work / "runs", kimg, log=lambda *_: None)
    return run_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--parts", default=",".join(PARTS))
    parser.add_argument("--train-precisions", help="default: fp16,bf16 on CUDA, fp32 on a CPU")
    parser.add_argument("--speed-steps", type=int, default=6)
    parser.add_argument("--wait-steps", type=int, default=8, help="a multiple of the ADA interval")
    parser.add_argument("--model", help="run folder, checkpoint or network file (with --data)")
    parser.add_argument("--data", help="the model's training data (archive or folder)")
    parser.add_argument("--kimg", type=float, default=12.0, help="the tiny run's length")
    parser.add_argument("--images", type=int, default=500, help="generated images per FID")
    parser.add_argument("--precisions", help="default: fp32,bf16,fp16 on CUDA, fp32,bf16 on a CPU")
    parser.add_argument("--out", type=Path, help="keep the data and the tiny run here")
    args = parser.parse_args()
    parts = args.parts.split(",")
    if unknown := set(parts) - set(PARTS):
        parser.error(f"--parts: unknown {', '.join(sorted(unknown))}; known: {', '.join(PARTS)}")
    if args.model and not args.data:
        parser.error("--model needs --data: the images its FID compares against")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error(
            "--device cuda: this machine has no usable CUDA GPU (--device cpu: smoke test)"
        )
    cuda = args.device == "cuda"
    train_precisions = (args.train_precisions or ("fp16,bf16" if cuda else "fp32")).split(",")
    args.precisions = args.precisions or ("fp32,bf16,fp16" if cuda else "fp32,bf16")
    if not cuda and "fp16" in args.precisions.split(","):
        parser.error("--precisions fp16 needs --device cuda (the CPU's reduced type is bf16)")
    if "speed" in parts:
        speed(args.device, train_precisions, args.speed_steps)
    if "waits" in parts:
        waits(args.device, train_precisions, args.wait_steps)
    if "fid" in parts:
        with tempfile.TemporaryDirectory() as tmp:
            work = args.out or Path(tmp)
            work.mkdir(parents=True, exist_ok=True)
            fid(args.device, args, work)


if __name__ == "__main__":
    main()
