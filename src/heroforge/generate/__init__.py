"""Generation from a trained (or imported) model: heroes from seeds, morphs, children, mixing.

    from heroforge.generate import generate_images, load_generator
    G = load_generator("runs/00000-superheroes-512")  # run folder, checkpoints/ or .safetensors
    images = generate_images(G, seeds=[1, 2, 3], truncation_psi=0.7)   # PIL images

    model.py    load_generator: --model -> LoadedGenerator (G_ema preferred), one-line errors
    seeds.py    parse "0-99,123", layer lists, keys (seeds or latent files), "RxC" grids
    latents.py  seed -> z (as the official generate.py) -> ws; latent files
    sample.py   batched synthesis, `generate` (PNG per seed with metadata, grid)
    morph.py    walks through heroes: slerp-z, lerp-w, cubic-w; grids of walks
    video.py    GIF (Pillow), MP4 (imageio + imageio-ffmpeg, the `video` extra)
    child.py    the child of two heroes (blend or per-layer mixing) and its panel
    mix.py      style-mixing grids
    project.py  a real picture -> the latent that draws it (`project_image`, `write_projection`)
    target.py   reading and preparing the picture a projection aims at
    perceptual.py  the perceptual distance of projection (offline InceptionV3 feature maps)

The API names below are imported on first use, so that importing the CLI (heroforge.commands)
does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_API = {
    "LoadedGenerator": "model",
    "load_generator": "model",
    "wrap_generator": "model",
    "parse_seeds": "seeds",
    "parse_keys": "seeds",
    "Key": "latents",
    "seed_z": "latents",
    "seed_ws": "latents",
    "resolve_keys": "latents",
    "save_latent": "latents",
    "load_latent": "latents",
    "synthesize": "sample",
    "generate_images": "sample",
    "write_seed_images": "sample",
    "walk_ws": "morph",
    "morph_frames": "morph",
    "write_morph": "morph",
    "write_animation": "video",
    "make_child": "child",
    "write_child": "child",
    "style_mix_grid": "mix",
    "write_mix": "mix",
    "ProjectSettings": "project",
    "Projection": "project",
    "project_image": "project",
    "write_projection": "project",
    "read_target": "target",
    "prepare_target": "target",
}
__all__ = sorted(_API)


def __getattr__(name: str) -> Any:
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'heroforge.generate' has no attribute {name!r}")
    return getattr(importlib.import_module(f"heroforge.generate.{module}"), name)
