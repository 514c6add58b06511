"""Where heroes live: seed -> z -> w, and w saved to / loaded from latent files.

A seed's z is numpy's RandomState(seed).randn(1, z_dim), exactly as the official generate.py
draws it, so a favourite seed of an imported official model gives the same hero here. A latent
file holds one hero's ws ([num_ws, w_dim], one w per synthesis layer, already truncated) as a
safetensors tensor "ws": the child command writes one per child, and a projection of a real
picture will too, so that every command taking heroes takes seeds and latent files alike.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load as safetensors_load
from safetensors.torch import save as safetensors_save

from heroforge.errors import UserError
from heroforge.fileio import atomic_write_bytes
from heroforge.generate.model import LoadedGenerator
from heroforge.nets.loading import one_line

LATENT_FORMAT = "heroforge-latent/1"


@dataclass(frozen=True)
class Key:
    label: str  # "seed12", or the latent file's name: names the outputs
    ws: torch.Tensor  # [num_ws, w_dim] on the model's device, truncation applied
    z: torch.Tensor | None = None  # [z_dim] of a seed (slerp in z needs it); None for a file


def seed_z(seeds: Sequence[int], z_dim: int) -> np.ndarray:
    """z [len(seeds), z_dim] (float64), row i = RandomState(seeds[i]).randn(1, z_dim)."""
    rows = [np.random.RandomState(seed).randn(1, z_dim) for seed in seeds]
    return np.concatenate(rows) if rows else np.zeros((0, z_dim))


def class_labels(model: LoadedGenerator, class_idx: int | None, n: int) -> torch.Tensor | None:
    """One-hot labels [n, c_dim] for a conditional model; None for an unconditional one."""
    c_dim = model.c_dim
    if c_dim == 0:
        if class_idx is not None:
            raise UserError(
                f"--class is for conditional models; {model.source.name} has no classes"
            )
        return None
    if class_idx is None:
        raise UserError(f"{model.source.name} is conditional: choose --class 0 to {c_dim - 1}")
    if not 0 <= class_idx < c_dim:
        raise UserError(f"--class {class_idx} does not exist: classes go from 0 to {c_dim - 1}")
    labels = torch.zeros(n, c_dim, device=model.device)
    labels[:, class_idx] = 1
    return labels


def check_psi(truncation_psi: float) -> None:
    if not math.isfinite(truncation_psi):
        raise UserError(f"--trunc {truncation_psi} is not a number; 0.7 is typical, 1 = none")


def map_z(
    model: LoadedGenerator,
    z: np.ndarray | torch.Tensor,
    truncation_psi: float = 1.0,
    class_idx: int | None = None,
    truncation_cutoff: int | None = None,
) -> torch.Tensor:
    """ws [N, num_ws, w_dim] of latents z [N, z_dim] through the mapping network.

    truncation_psi < 1 pulls w towards the average hero (less variety, fewer failures);
    truncation_cutoff limits that to the first ws (the coarse layers); None = all layers.
    """
    check_psi(truncation_psi)
    z = torch.as_tensor(z, device=model.device)
    labels = class_labels(model, class_idx, z.shape[0])
    # no_grad rather than inference_mode: ws go on into interpolation and mixing, and a
    # projection will optimise from them, which inference tensors would not allow.
    with torch.no_grad():
        return model.G.mapping(z, labels, truncation_psi, truncation_cutoff)


def seed_ws(
    model: LoadedGenerator,
    seeds: Sequence[int],
    truncation_psi: float = 1.0,
    class_idx: int | None = None,
) -> torch.Tensor:
    """ws [len(seeds), num_ws, w_dim] of seeds, the official way."""
    return map_z(model, seed_z(seeds, model.G.z_dim), truncation_psi, class_idx)


def resolve_keys(
    model: LoadedGenerator,
    keys: Sequence[int | Path],
    truncation_psi: float = 1.0,
    class_idx: int | None = None,
) -> list[Key]:
    """Heroes named by seeds or latent files (as seeds.parse_keys returns them), in order."""
    seeds = sorted({k for k in keys if isinstance(k, int)})
    by_seed = {}
    if seeds:  # only seeds need --class: a walk through latent files runs without it
        z = torch.as_tensor(seed_z(seeds, model.G.z_dim), device=model.device)
        ws = map_z(model, z, truncation_psi, class_idx)
        by_seed = {seed: (z[i], ws[i]) for i, seed in enumerate(seeds)}
    resolved = []
    for key in keys:
        if isinstance(key, int):
            z_row, ws_row = by_seed[key]
            resolved.append(Key(label=f"seed{key}", ws=ws_row, z=z_row))
        else:
            resolved.append(Key(label=latent_label(key), ws=load_latent(key, model)))
    return resolved


def latent_label(path: Path) -> str:
    """hero.latent.safetensors -> "hero"."""
    return path.name.removesuffix(".safetensors").removesuffix(".latent")


def save_latent(path: str | Path, ws: torch.Tensor) -> Path:
    """Write one hero's ws [num_ws, w_dim] as a latent file (atomically); returns its path."""
    path = Path(path)
    ws = ws.detach().to(device="cpu", dtype=torch.float32).contiguous()
    if ws.ndim != 2:
        raise ValueError(f"a latent is [num_ws, w_dim], got {tuple(ws.shape)}")
    atomic_write_bytes(path, safetensors_save({"ws": ws}, {"format": LATENT_FORMAT}))
    return path


def load_latent(path: str | Path, model: LoadedGenerator) -> torch.Tensor:
    """The ws [num_ws, w_dim] of a latent file, checked against the model, on its device."""
    path = Path(path)
    try:
        tensors = safetensors_load(path.read_bytes())
    except FileNotFoundError:
        raise UserError(f"no latent file at {path}") from None
    except (OSError, SafetensorError, ValueError) as err:
        raise UserError(f"cannot read the latent file {path}: {one_line(err)}") from None
    ws = tensors.get("ws")
    if ws is None:
        raise UserError(f"{path} is not a latent file (it has no 'ws' tensor)")
    expected = (model.G.num_ws, model.G.w_dim)
    if tuple(ws.shape) != expected or not ws.is_floating_point():
        raise UserError(
            f"{path} holds ws of shape {tuple(ws.shape)}, but this model takes {expected}: "
            "it was made with another model"
        )
    if not torch.isfinite(ws).all():
        raise UserError(f"{path} holds non-finite values (damaged)")
    return ws.to(device=model.device, dtype=torch.float32)
