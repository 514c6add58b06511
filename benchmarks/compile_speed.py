"""torch.compile (inductor, the C++ compiler found here) against eager on the CPU: JSON lines.

Both forms run side by side in one process, one step or one batch of each in turn (the order
flipping every round), so that the other processes of a loaded machine slow both alike; the
figures to read are the ratios.

train: two Trainers from the same config and seed, one with train.compile (the main phases'
synthesis and D compiled; the regularisers stay eager), stepped in turn over the same global
steps (so the same phases and the same random draws). "compile" is the compiled trainer's
first --warm-up steps less the eager one's (the graphs are built there); the steady state is
the steps after, compared pair by pair (wall seconds, and CPU seconds of all threads, which
depend less on the load). Match: the largest loss difference over the steps and the largest
weight difference of G and D at the end. The compiled forms draw their noise with torch's own
generator (inductor's fallback_random), as eager does: otherwise the two draw different noise
and nothing can be compared.

generate: the 64 px "auto" generator (random weights, its 4 top blocks in the precision asked
for) at batch 8, heroforge.generate's path from seeds to pictures, with G eager and with G's
synthesis compiled, per precision: first call (the compile), then --pairs rounds; and the
largest and mean grey-level difference of the compiled pictures of seeds 0-63 from the eager
ones. Inductor compiles in this process (compile_threads = 1), so that the CPU seconds of the
compile are counted.

Usage: python benchmarks/compile_speed.py train [--only tiny|auto64] [--precision fp32 bf16]
           [--steps 5] [--warm-up 2]
       python benchmarks/compile_speed.py generate [--precision fp32 bf16] [--pairs 5]
"""

import argparse
import copy
import dataclasses
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch._inductor.config as inductor_config

from cpu_reference import auto_config, noise_dataset, speed_config
from heroforge.generate.model import set_precision, wrap_generator
from heroforge.generate.sample import generate_images
from heroforge.nets.generator import Generator, build_generator

BATCH = 8
PARITY_SEEDS = list(range(64))


def emit(**record):
    print(json.dumps({"benchmark": "compile_speed", **record}), flush=True)


def clocks() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def since(start: tuple[float, float]) -> tuple[float, float]:
    wall, cpu = clocks()
    return wall - start[0], cpu - start[1]


def common_fields() -> dict:
    return {
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "load_average_1min": round(os.getloadavg()[0], 2),
    }


def pair_ratios(eager: list[tuple[float, float]], compiled: list[tuple[float, float]]) -> dict:
    """eager / compiled per pair (> 1: compiled faster), wall and CPU, their median and range."""
    fields = {}
    for index, clock in enumerate(("wall", "cpu")):
        ratios = [e[index] / c[index] for e, c in zip(eager, compiled, strict=True)]
        fields[f"speedup_{clock}_median"] = round(statistics.median(ratios), 3)
        fields[f"speedup_{clock}_pairs"] = [round(r, 3) for r in ratios]
        fields[f"eager_{clock}_s"] = round(statistics.median(e[index] for e in eager), 3)
        fields[f"compiled_{clock}_s"] = round(statistics.median(c[index] for c in compiled), 3)
    return fields


def bench_train(name: str, precision: str, steps: int, warm_up: int) -> None:
    from heroforge.runtime.dist import DistInfo
    from heroforge.train.loop import Trainer, phases_at
    from heroforge.train.stats import TickStats

    cfg = speed_config(name)
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, precision=precision))
    compiled_cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, compile=True))
    device = DistInfo(0, 1, torch.device("cpu"))
    with tempfile.TemporaryDirectory() as tmp:
        dataset = noise_dataset(Path(tmp), cfg.data.resolution)
        trainers = {
            "eager": Trainer(cfg, dataset, Path(tmp) / "eager", device),
            "compiled": Trainer(compiled_cfg, dataset, Path(tmp) / "compiled", device),
        }
        times: dict[str, list[tuple[float, float]]] = {form: [] for form in trainers}
        losses: dict[str, list[dict]] = {form: [] for form in trainers}
        for step in range(warm_up + steps):
            order = list(trainers) if step % 2 == 0 else list(reversed(trainers))
            for form in order:
                stats = TickStats()
                start = clocks()
                trainers[form].step(stats)
                times[form].append(since(start))
                losses[form].append(
                    {k: v for k, v in stats.means().items() if k.startswith("loss/")}
                )
        loss_diff = max(
            abs(e[key] - c[key])
            for e, c in zip(losses["eager"], losses["compiled"], strict=True)
            for key in e
        )
        weight_diff = {
            net: max(
                float((a - b).abs().max())
                for a, b in zip(
                    getattr(trainers["eager"], net).parameters(),
                    getattr(trainers["compiled"], net).parameters(),
                    strict=True,
                )
            )
            for net in ("G", "D")
        }
        first = {form: [sum(t[i] for t in times[form][:warm_up]) for i in (0, 1)] for form in times}
        emit(
            figure="train",
            config=name,
            precision=trainers["compiled"].precision.name,
            resolution=cfg.data.resolution,
            batch=cfg.train.batch,
            steady_steps=steps,
            steady_phases=[list(phases_at(cfg.train, s)) for s in range(warm_up, warm_up + steps)],
            compile_wall_s=round(first["compiled"][0] - first["eager"][0], 1),
            compile_cpu_s=round(first["compiled"][1] - first["eager"][1], 1),
            **pair_ratios(times["eager"][warm_up:], times["compiled"][warm_up:]),
            max_loss_difference=loss_diff,
            max_weight_difference=weight_diff,
            losses=losses,
            **common_fields(),
        )


def with_compiled_synthesis(gen: Generator) -> Generator:
    """gen with torch.compile(gen.synthesis) in place of its synthesis, the same parameters
    (generate calls G.mapping and G.synthesis, not G itself; the mapping is a few small
    matrix products)."""
    twin = copy.copy(gen)
    twin._modules = dict(gen._modules)  # the copy's own table of submodules
    twin.synthesis = torch.compile(gen.synthesis)
    return twin


def bench_generate(precisions: list[str], pairs: int) -> None:
    cfg = auto_config(64, BATCH)
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, precision="auto"))
    eager = wrap_generator(build_generator(cfg).eval())
    compiled = dataclasses.replace(eager, G=with_compiled_synthesis(eager.G))
    forms = {"eager": eager, "compiled": compiled}
    seeds = list(range(BATCH))
    for precision in precisions:
        set_precision(eager, precision)  # the compiled form shares the modules
        generate_images(eager, seeds, batch_size=BATCH)  # times the modulated-conv forms
        first = {}
        for form, model in forms.items():
            start = clocks()
            generate_images(model, seeds, batch_size=BATCH)
            first[form] = since(start)
        times: dict[str, list[tuple[float, float]]] = {form: [] for form in forms}
        for round_index in range(pairs):
            order = list(forms) if round_index % 2 == 0 else list(reversed(forms))
            for form in order:
                start = clocks()
                generate_images(forms[form], seeds, batch_size=BATCH)
                times[form].append(since(start))
        pictures = {
            form: np.stack(
                [np.asarray(i) for i in generate_images(model, PARITY_SEEDS, batch_size=BATCH)]
            ).astype(int)
            for form, model in forms.items()
        }
        diff = np.abs(pictures["compiled"] - pictures["eager"])
        ratios = pair_ratios(times["eager"], times["compiled"])
        emit(
            figure="generate",
            net="auto64",
            precision=eager.precision,
            batch=BATCH,
            compile_wall_s=round(first["compiled"][0] - first["eager"][0], 1),
            compile_cpu_s=round(first["compiled"][1] - first["eager"][1], 1),
            eager_images_per_s=round(BATCH / ratios["eager_wall_s"], 2),
            compiled_images_per_s=round(BATCH / ratios["compiled_wall_s"], 2),
            **ratios,
            max_levels=int(diff.max()),
            mean_levels=round(float(diff.mean()), 3),
            **common_fields(),
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("what", choices=("train", "generate"))
    parser.add_argument("--only", choices=("tiny", "auto64"), action="append")
    precisions = ["fp32", "bf16"]
    parser.add_argument("--precision", nargs="+", default=precisions, choices=precisions)
    parser.add_argument("--steps", type=int, default=5, help="steady-state training steps")
    parser.add_argument("--warm-up", type=int, default=2, help="first training steps (compile)")
    parser.add_argument("--pairs", type=int, default=5, help="generation rounds after the first")
    parser.add_argument(
        "--threads",
        type=int,
        help="torch threads (default: torch's, one per core); 1 is less slowed by other "
        "processes' load (no thread waits for a descheduled partner)",
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    inductor_config.fallback_random = True  # see the docstring: the same noise as eager
    inductor_config.compile_threads = 1  # see the docstring
    if args.what == "generate":
        bench_generate(args.precision, args.pairs)
        return
    for name in args.only or ["tiny", "auto64"]:
        for precision in args.precision:
            bench_train(name, precision, args.steps, args.warm_up)


if __name__ == "__main__":
    main()
