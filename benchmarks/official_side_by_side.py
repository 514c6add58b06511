"""The official StyleGAN2-ADA implementation next to heroforge, on this CPU, same config: JSON.

Times training steps of the official code (its networks, loss and augment pipe, imported from
a checkout you give; nothing of it is copied here) in the phase order of its training loop,
and the same number of heroforge steps (benchmarks/train_speed.py), each in a fresh process
so that peak memory is its own. The official code runs its reference (plain PyTorch) ops on the
CPU, as it does on any machine without CUDA. Ends with one line of ratios: speed-up and memory.
heroforge trains in its default precision (train.precision "auto", recorded in its line) unless
--precision says otherwise; the official code in its only CPU precision, fp32.
This machine's speed drifts by 10-15% from one run to the next (shared hosts), so --rounds N
alternates the two N times and the ratios compare each one's best run.

--parity loads the same random weights into both implementations' G and D and prints how far
their images, logits and every parameter's gradient (of G's loss through D) are apart.

--generate times image generation, G(z) at batch 8 without gradients, in both: the official
G in eval mode (as its generate.py runs it: the "fused" grouped-convolution form) and
heroforge's generator as `heroforge generate` runs it (the form its planner picks). Both use
the same weights; the best of --steps runs each, alternating, in one process.

--learn trains the official code on a folder of PNGs (the tiny-cpu network, one thread, as the
demo trains heroforge) and prints FID/KID of its G_ema at the start and every 2 kimg, measured
as train_learning.py measures heroforge: does the official code learn in a short run? By
default with the official "auto" rules (cpu_reference.TINY_OFFICIAL_RULES); --set
SECTION.KEY=VALUE (repeatable) instead applies those overrides to tiny-cpu's own settings
(none: `--set train.seed=0`).

Needs: a checkout of https://github.com/NVlabs/stylegan2-ada-pytorch and scipy (its augment
module imports it). Its `requests` import (downloads only) is stubbed when missing.

Usage: python benchmarks/official_side_by_side.py --official DIR [--config tiny|auto64]
       [--steps 6 [--rounds 1] [--precision auto|fp32|bf16] | --parity | --generate]
       (--official defaults to $HEROFORGE_OFFICIAL; none: a skip line)
       python benchmarks/official_side_by_side.py --official DIR --learn PNG_DIR [--kimg 10]
       [--images 128] [--set SECTION.KEY=VALUE ...]
"""

import argparse
import copy
import importlib
import json
import math
import os
import resource
import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np
import torch

from heroforge.runtime.allocator import training_allocator_env

# the "bgc" pipe: every blit, geometric and colour transform at full strength (times p)
BGC_TRANSFORMS = ["xflip", "rotate90", "xint", "scale", "rotate", "aniso", "xfrac"]
BGC_TRANSFORMS += ["brightness", "contrast", "lumaflip", "hue", "saturation"]
BGC = dict.fromkeys(BGC_TRANSFORMS, 1)


def import_official(checkout: Path) -> types.SimpleNamespace:
    if not (checkout / "training" / "networks.py").is_file():
        sys.exit(f"{checkout} is not a stylegan2-ada-pytorch checkout (no training/networks.py)")
    sys.path.insert(0, str(checkout))
    if "requests" not in sys.modules:
        try:
            import requests  # noqa: F401
        except ImportError:
            sys.modules["requests"] = types.ModuleType("requests")  # used for downloads only
    try:
        training_stats = importlib.import_module("torch_utils.training_stats")
        augment = importlib.import_module("training.augment")
        loss = importlib.import_module("training.loss")
        networks = importlib.import_module("training.networks")
    except ImportError as err:
        sys.exit(f"the official code needs {err.name}: pip install {err.name}")
    return types.SimpleNamespace(
        training_stats=training_stats,
        AugmentPipe=augment.AugmentPipe,
        StyleGAN2Loss=loss.StyleGAN2Loss,
        Generator=networks.Generator,
        Discriminator=networks.Discriminator,
    )


def _official_common(cfg) -> dict:
    """Constructor arguments both official networks share: channels, and the official --fp32
    on a CPU (no fp16 layers, no clamping)."""
    net = cfg.network
    return {
        "channel_base": net.channel_base,
        "channel_max": net.channel_max,
        "num_fp16_res": 0,
        "conv_clamp": None,
    }


def official_generator(official: types.SimpleNamespace, cfg) -> torch.nn.Module:
    net = cfg.network
    return official.Generator(
        z_dim=net.z_dim,
        c_dim=0,
        w_dim=net.w_dim,
        img_resolution=cfg.data.resolution,
        img_channels=cfg.data.channels,
        mapping_kwargs={"num_layers": net.mapping_layers},
        synthesis_kwargs=_official_common(cfg),
    )


class OfficialTrainer:
    """The official training loop's step for a heroforge Config: phases Gmain, Greg, Dmain, Dreg
    with lazy intervals and Adam rates adjusted as the official loop does, G EMA, ADA."""

    def __init__(self, official: types.SimpleNamespace, cfg) -> None:
        net, tc = cfg.network, cfg.train
        self.G = official_generator(official, cfg)
        self.D = official.Discriminator(
            c_dim=0,
            img_resolution=cfg.data.resolution,
            img_channels=cfg.data.channels,
            epilogue_kwargs={"mbstd_group_size": net.mbstd_group},
            **_official_common(cfg),
        )
        for module in (self.G, self.D):
            module.train().requires_grad_(False)
        self.G_ema = copy.deepcopy(self.G).eval()
        self.augment = None
        if cfg.augment.mode != "none":
            self.augment = official.AugmentPipe(**BGC).train().requires_grad_(False)
        self.loss = official.StyleGAN2Loss(
            "cpu",
            self.G.mapping,
            self.G.synthesis,
            self.D,
            augment_pipe=self.augment,
            style_mixing_prob=tc.style_mixing,
            r1_gamma=tc.r1_gamma,
            pl_batch_shrink=tc.pl_batch_shrink,
            pl_decay=tc.pl_decay,
            pl_weight=tc.pl_weight,
        )
        self.phases = []
        for name, module, interval, lr in (
            ("G", self.G, tc.pl_interval, tc.g_lr),
            ("D", self.D, tc.r1_interval, tc.d_lr),
        ):
            ratio = interval / (interval + 1)
            betas = tuple(float(b) ** ratio for b in tc.betas)
            opt = torch.optim.Adam(module.parameters(), lr=lr * ratio, betas=betas, eps=tc.eps)
            self.phases += [(f"{name}main", module, opt, 1), (f"{name}reg", module, opt, interval)]
        self.cfg, self.step_index, self.nimg = cfg, 0, 0
        self.ada_stats = official.training_stats.Collector(regex="Loss/signs/real")

    def step(self, reals: torch.Tensor) -> None:
        """One global minibatch; reals: uint8 [batch, C, R, R]."""
        tc, batch = self.cfg.train, reals.shape[0]
        real = reals.to(torch.float32) / 127.5 - 1
        no_labels = torch.zeros([batch, 0])
        for name, module, opt, interval in self.phases:
            if self.step_index % interval:
                continue
            z = torch.randn([batch, self.cfg.network.z_dim])
            opt.zero_grad(set_to_none=True)
            module.requires_grad_(True)
            self.loss.accumulate_gradients(name, real, no_labels, z, no_labels, True, interval)
            module.requires_grad_(False)
            for param in module.parameters():
                if param.grad is not None:
                    torch.nan_to_num(param.grad, nan=0, posinf=1e5, neginf=-1e5, out=param.grad)
            opt.step()
        self.nimg += batch
        self.step_index += 1
        ema_nimg = tc.ema_kimg * 1000
        if tc.ema_rampup:
            ema_nimg = min(ema_nimg, self.nimg * tc.ema_rampup)
        beta = 0.5 ** (batch / max(ema_nimg, 1e-8))
        with torch.no_grad():
            for p_ema, p in zip(self.G_ema.parameters(), self.G.parameters(), strict=True):
                p_ema.copy_(p.lerp(p_ema, beta))
            for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers(), strict=True):
                b_ema.copy_(b)
        interval = self.cfg.augment.interval
        if self.augment is not None and self.step_index % interval == 0:
            self.ada_stats.update()
            signs = self.ada_stats["Loss/signs/real"]
            speed = batch * interval / (self.cfg.augment.speed_kimg * 1000)
            adjust = float(np.sign(signs - self.cfg.augment.target)) * speed
            self.augment.p.copy_((self.augment.p + adjust).clamp(min=0))


def measure_official(checkout: Path, name: str, steps: int) -> dict:
    from cpu_reference import peak_fields, speed_config, training_flops

    cfg = speed_config(name)
    torch.manual_seed(0)
    trainer = OfficialTrainer(import_official(checkout), cfg)
    res, batch = cfg.data.resolution, cfg.train.batch
    reals = torch.randint(0, 256, [batch, cfg.data.channels, res, res], dtype=torch.uint8)
    for _ in range(2):  # warm-up, as train_speed.py
        trainer.step(reals)
    start = time.perf_counter()
    for _ in range(steps):
        trainer.step(reals)
    window_seconds = time.perf_counter() - start
    seconds = window_seconds / steps
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    def run_step(step: int) -> None:
        trainer.step_index = step
        trainer.step(reals)

    def phases_at(step: int) -> tuple[str, ...]:
        return tuple(name for name, _, _, interval in trainer.phases if step % interval == 0)

    tc = cfg.train
    window_flops, per_step = training_flops(
        run_step, phases_at, range(2, 2 + steps), math.lcm(tc.pl_interval, tc.r1_interval)
    )
    return {
        "benchmark": "official_side_by_side",
        "implementation": "official",
        "config": name,
        "batch": batch,
        "sec_per_kimg": round(seconds * 1000 / batch, 1),
        "img_per_s": round(batch / seconds, 3),
        "peak_rss_mb": round(peak_rss_mb, 1),
        **peak_fields(window_flops, window_seconds, steps, per_step, batch),
        "threads": torch.get_num_threads(),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }


def parity(checkout: Path, name: str) -> dict:
    """Same weights in both implementations: how far apart are their outputs and gradients?"""
    from cpu_reference import speed_config
    from heroforge.nets.discriminator import build_discriminator
    from heroforge.nets.generator import build_generator

    cfg = speed_config(name)
    torch.manual_seed(0)
    official = OfficialTrainer(import_official(checkout), cfg)
    ours = {"G": build_generator(cfg, modconv="split"), "D": build_discriminator(cfg)}
    for key, net in ours.items():
        # heroforge keeps the official names; only the FIR filter buffers are not stored
        net.load_state_dict(getattr(official, key).state_dict(), strict=False)
    z = torch.randn([8, cfg.network.z_dim])
    outputs = []  # (images, logits, gradients by name): the official code's, then heroforge's
    for gen, disc in ((official.G, official.D), (ours["G"], ours["D"])):
        gen.requires_grad_(True).zero_grad(set_to_none=True)
        disc.requires_grad_(True).zero_grad(set_to_none=True)
        img = gen(z, None, noise_mode="const")
        logits = disc(img, None)
        torch.nn.functional.softplus(-logits).mean().backward()
        grads = {k: p.grad for k, p in [*gen.named_parameters(), *disc.named_parameters()]}
        outputs.append((img.detach(), logits.detach(), grads))
    (img_a, logit_a, grad_a), (img_b, logit_b, grad_b) = outputs
    rel = {
        k: float((grad_a[k] - grad_b[k]).norm() / grad_a[k].norm().clamp(min=1e-30)) for k in grad_a
    }
    worst = max(rel, key=rel.get)
    flat_a = torch.cat([g.flatten() for g in grad_a.values()])
    flat_b = torch.cat([grad_b[k].flatten() for k in grad_a])
    return {
        "benchmark": "official_side_by_side",
        "parity": name,
        "image_max_abs_diff": float((img_a - img_b).abs().max()),
        "logits_max_abs_diff": float((logit_a - logit_b).abs().max()),
        "gradients_compared": len(rel),
        # all gradients as one vector; then the worst single tensor (a noise strength's scalar
        # gradient is a sum over every pixel, so float32 rounding shows most there)
        "gradient_rel_diff": float((flat_a - flat_b).norm() / flat_a.norm()),
        "worst_gradient": worst,
        "worst_gradient_rel_diff": rel[worst],
    }


def generation(checkout: Path, name: str, runs: int) -> dict:
    """Images/s of G(z) at batch 8, official vs heroforge in each precision it offers here
    (auto = what `heroforge generate` uses by default; bf16 = `--precision bf16`), same
    weights; best of `runs`, alternating."""
    import dataclasses

    from cpu_reference import speed_config
    from heroforge.generate.model import set_precision, wrap_generator
    from heroforge.generate.sample import to_uint8
    from heroforge.nets.generator import build_generator

    cfg = speed_config(name)
    # as training with the default precision builds it: the top num_fp16_res blocks may run
    # in a reduced type (speed_config pins training to fp32, which builds none)
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, precision="auto"))
    torch.manual_seed(0)
    theirs = official_generator(import_official(checkout), cfg).eval().requires_grad_(False)
    ours = build_generator(cfg)  # modconv "auto", as `heroforge generate` builds it
    ours.load_state_dict(theirs.state_dict(), strict=False)  # FIR buffers are not stored
    model = wrap_generator(ours)
    z = torch.randn([8, cfg.network.z_dim])

    def heroforge(precision: str) -> torch.Tensor:
        set_precision(model, precision)
        return model.G(z, noise_mode="const")

    generators = {
        "official": lambda: theirs(z, None, noise_mode="const"),
        "heroforge": lambda: heroforge("auto"),
        "heroforge_bf16": lambda: heroforge("bf16"),
    }
    best = dict.fromkeys(generators, float("inf"))
    with torch.inference_mode():
        images = {key: fn() for key, fn in generators.items()}  # warm-up: kernels, planner
        for _ in range(runs):
            for key, fn in generators.items():
                start = time.perf_counter()
                fn()
                best[key] = min(best[key], time.perf_counter() - start)
    pixels = {key: to_uint8(img).astype(int) for key, img in images.items()}  # as PNGs hold them
    line = {"benchmark": "official_side_by_side", "generate": name, "batch": 8}
    set_precision(model, "auto")
    line["heroforge_precision"] = model.precision  # what "auto" is on this machine
    for key in generators:
        line[f"{key}_img_per_s"] = round(8 / best[key], 2)
    for key in ("heroforge", "heroforge_bf16"):
        suffix = key.removeprefix("heroforge")
        line[f"speedup{suffix}"] = round(best["official"] / best[key], 3)
        line[f"image_max_abs_diff{suffix}"] = float((images["official"] - images[key]).abs().max())
        line[f"pixel_max_levels{suffix}"] = int(abs(pixels["official"] - pixels[key]).max())
    line["goal"] = "speedup >= 3 (issue 23)"
    line["threads"] = torch.get_num_threads()
    line["load_average_1min"] = round(os.getloadavg()[0], 2)
    return line


def learn(checkout: Path, png_dir: Path, kimg: float, images: int, overrides: list[str]) -> None:
    """Train the official code on png_dir like the demo trains heroforge (tiny-cpu with the
    overrides); then FID/KID of its G_ema (in heroforge's generator) at the start and every
    2 kimg."""
    from PIL import Image

    from heroforge import demo
    from heroforge.config import load_config
    from heroforge.data.dataset import ImageDataset
    from heroforge.nets.generator import build_generator

    torch.set_num_threads(1)  # as the demo
    torch.manual_seed(0)
    cfg = load_config("tiny-cpu", overrides)
    files = sorted(png_dir.glob("*.png"))
    if not files:
        sys.exit(f"no PNG files in {png_dir}")
    pixels = np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files])
    pixels = torch.from_numpy(pixels).permute(0, 3, 1, 2)
    trainer = OfficialTrainer(import_official(checkout), cfg)
    snapshots = {0.0: copy.deepcopy(trainer.G_ema.state_dict())}
    every = 2000 // cfg.train.batch
    start = time.perf_counter()
    while trainer.nimg < kimg * 1000:
        trainer.step(pixels[torch.randint(len(pixels), [cfg.train.batch])])
        if trainer.step_index % every == 0 or trainer.nimg >= kimg * 1000:
            snapshots[trainer.nimg / 1000] = copy.deepcopy(trainer.G_ema.state_dict())
    seconds = time.perf_counter() - start
    dataset = ImageDataset(png_dir, resolution=cfg.data.resolution)
    for at, state in snapshots.items():
        generator = build_generator(cfg, modconv="split")
        generator.load_state_dict(state, strict=False)  # FIR filter buffers are not stored
        fid, kid = demo.fid_kid(generator, dataset, cfg, images)
        line = {"benchmark": "official_side_by_side", "learn": "official", "kimg": at}
        line.update(overrides=overrides, fid=round(fid, 1), kid=round(kid, 4))
        line["train_seconds"] = round(seconds, 1)
        print(json.dumps(line), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--official", type=Path, default=os.environ.get("HEROFORGE_OFFICIAL"))
    parser.add_argument("--config", choices=("tiny", "auto64"), default="auto64")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto")
    parser.add_argument("--parity", action="store_true")
    parser.add_argument("--generate", action="store_true")
    parser.add_argument("--learn", type=Path)
    parser.add_argument("--kimg", type=float, default=10.0)
    parser.add_argument("--images", type=int, default=128)
    parser.add_argument("--set", action="append", dest="overrides", help="for --learn")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.official is None:  # e.g. `make bench` on a machine without the official code
        skipped = "no --official checkout given (or HEROFORGE_OFFICIAL)"
        print(json.dumps({"benchmark": "official_side_by_side", "skipped": skipped}))
        return
    if args.parity:
        print(json.dumps(parity(args.official, args.config)))
        return
    if args.generate:
        print(json.dumps(generation(args.official, args.config, args.steps)))
        return
    if args.learn:
        from cpu_reference import TINY_OFFICIAL_RULES

        overrides = TINY_OFFICIAL_RULES if args.overrides is None else args.overrides
        learn(args.official, args.learn, args.kimg, args.images, overrides)
        return
    if args.child:
        print(json.dumps(measure_official(args.official, args.config, args.steps)))
        return
    here = Path(__file__).parent
    runs = {
        "official": [__file__, "--child", "--official", str(args.official)],
        "heroforge": [
            *(str(here / "train_speed.py"), "--child", args.config),
            *("--precision", args.precision),
        ],
    }
    # Each as its users run it: heroforge with the allocator settings `heroforge train` starts
    # itself with (runtime/allocator.py), the official code with the environment as it is.
    envs = {"official": dict(os.environ), "heroforge": training_allocator_env(os.environ)}
    best: dict[str, dict] = {}
    for _ in range(args.rounds):
        for name, argv in runs.items():
            argv = [sys.executable, *argv, "--steps", str(args.steps)]
            if name == "official":
                argv += ["--config", args.config]
            env = envs[name] or dict(os.environ)
            out = subprocess.run(argv, check=True, capture_output=True, text=True, env=env).stdout
            line = json.loads(out.strip().splitlines()[-1])
            print(json.dumps(line), flush=True)
            if name not in best or line["sec_per_kimg"] < best[name]["sec_per_kimg"]:
                best[name] = line
    ours, theirs = best["heroforge"], best["official"]
    ratios = {
        "benchmark": "official_side_by_side",
        "config": args.config,
        "rounds": args.rounds,
        "speedup": round(theirs["sec_per_kimg"] / ours["sec_per_kimg"], 3),
        "memory_ratio": round(ours["peak_rss_mb"] / theirs["peak_rss_mb"], 3),
        "heroforge_precision": ours["precision"],
        "goal": "speedup >= 1.6, memory_ratio <= 0.5",
    }
    print(json.dumps(ratios))


if __name__ == "__main__":
    main()
