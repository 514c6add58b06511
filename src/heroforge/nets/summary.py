"""Parameter counts and forward FLOPs of the networks a config describes, per block.

The networks are built on the meta device: shapes only, no memory and no arithmetic, so even the
1024 px configurations summarise in a moment. FLOPs are counted by torch's FlopCounterMode over
one image's forward pass (multiply-adds count as two: convolutions including the FIR filters,
and the matrix products of the fully connected layers and demodulation).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from heroforge.config import Config
from heroforge.nets.discriminator import Discriminator, build_discriminator
from heroforge.nets.generator import Generator, build_generator


def count_params(module: nn.Module) -> int:
    """Trainable parameters (buffers such as w_avg and the constant noise do not count)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def _parts(net: Generator | Discriminator) -> list[tuple[str, nn.Module]]:
    """The rows of the breakdown: mapping, then one per resolution block."""
    if isinstance(net, Generator):
        return [("mapping", net.mapping)] + [
            (f"b{b.resolution}", b) for b in net.synthesis.blocks()
        ]
    rows: list[tuple[str, nn.Module]] = [(f"b{b.resolution}", b) for b in net.blocks()]
    rows.append(("b4", net.b4))
    return rows + ([("mapping", net.mapping)] if net.c_dim else [])


def _network_summary(net: Generator | Discriminator, run: Any) -> dict[str, Any]:
    counter = FlopCounterMode(display=False)
    with counter:
        run()
    flops = {name: sum(ops.values()) for name, ops in counter.get_flop_counts().items()}
    root = type(net).__name__
    prefix = f"{root}.synthesis." if hasattr(net, "synthesis") else f"{root}."
    blocks = []
    for name, module in _parts(net):
        key = f"{root}.mapping" if name == "mapping" else prefix + name
        blocks.append({"name": name, "params": count_params(module), "flops": flops.get(key, 0)})
    return {"params": count_params(net), "flops": counter.get_total_flops(), "blocks": blocks}


def summarize(cfg: Config, c_dim: int = 0) -> dict[str, Any]:
    """{"G": params, "D": params, "G_flops", "D_flops", "num_ws", "G_blocks", "D_blocks", ...}."""
    with torch.device("meta"):
        gen = build_generator(cfg, c_dim=c_dim)
        disc = build_discriminator(cfg, c_dim=c_dim)
        z = torch.empty(1, gen.z_dim)
        c = torch.empty(1, c_dim) if c_dim else None
        img = torch.empty(1, cfg.data.channels, cfg.data.resolution, cfg.data.resolution)
    g = _network_summary(gen, lambda: gen(z, c, noise_mode="const"))
    d = _network_summary(disc, lambda: disc(img, c))
    return {
        "G": g["params"],
        "D": d["params"],
        "G_flops": g["flops"],
        "D_flops": d["flops"],
        "resolution": cfg.data.resolution,
        "c_dim": c_dim,
        "num_ws": gen.num_ws,
        "G_blocks": g["blocks"],
        "D_blocks": d["blocks"],
    }


def _human(n: float) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.2f}{unit}"
    return f"{n:.0f}"


def format_summary(summary: dict[str, Any]) -> str:
    """A plain-text table: per block parameters and forward GFLOPs per image, then totals."""
    lines = []
    for net in ("G", "D"):
        lines.append(f"{net:<10}{'params':>14}{'FLOPs/img':>12}")
        for block in summary[f"{net}_blocks"]:
            lines.append(f"  {block['name']:<8}{block['params']:>14,}{_human(block['flops']):>12}")
        lines.append(f"  {'total':<8}{summary[net]:>14,}{_human(summary[f'{net}_flops']):>12}")
        lines.append("")
    lines.append(
        f"{summary['resolution']} px, {summary['num_ws']} ws, c_dim {summary['c_dim']}; "
        "FLOPs: one image's forward pass, multiply-adds counted as 2"
    )
    return "\n".join(lines)
