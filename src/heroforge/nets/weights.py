"""Save and load networks as safetensors + a JSON sidecar; loading never executes code.

`snapshot.safetensors` holds every tensor as "<network>.<state_dict key>" (parameters and the
persistent buffers w_avg and noise_const), and any extra tensors of the caller's (a training
checkpoint's optimiser state) as "extra.<key>". `snapshot.json` holds the heroforge config the
networks were built from, c_dim, which network is which kind, caller metadata, and the SHA-256
of the tensor file; the tensor file's header holds the SHA-256 of the sidecar's content
(integrity.py), so neither file can change unnoticed. Both files are written atomically, tensors
first: a crash between the two writes leaves a JSON whose hash does not match, which
load_networks refuses rather than pairing tensors with the wrong config. To load, every
tensor's name, shape and dtype in the header is checked against the networks the config
describes, built with meta tensors; then the networks are built for real from the config (no
pickles, no code from the file) and the tensors copied in.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as safetensors_load
from safetensors.torch import save as safetensors_save
from torch import nn

import heroforge
from heroforge import rundir
from heroforge.config import Config, config_from_dict
from heroforge.errors import UserError
from heroforge.fileio import atomic_write_bytes
from heroforge.nets.discriminator import Discriminator, build_discriminator
from heroforge.nets.generator import Generator, build_generator
from heroforge.nets.integrity import (
    SIDECAR_DIGEST_KEY,
    ShapesOnly,
    check_claims,
    read_header,
    sidecar_digest,
    sidecar_is_signed,
)

FORMAT = "heroforge-networks/1"
# kind -> builder(cfg, c_dim=...)
BUILDERS: dict[str, Callable[..., nn.Module]] = {
    "generator": build_generator,
    "discriminator": build_discriminator,
}
EXTRA = "extra"  # tensor-name prefix of extra_tensors; no network may be called this


@dataclass
class LoadedNetworks:
    networks: dict[str, nn.Module]  # name ("G", "D", "G_ema", ...) -> network
    cfg: Config  # the config the networks were built from
    c_dim: int  # label size; 0 = unconditional
    metadata: dict[str, Any] = field(default_factory=dict)  # what the caller saved alongside
    extra: dict[str, torch.Tensor] = field(default_factory=dict)  # e.g. optimiser state
    sidecar_signed: bool = True  # False: written before the tensor file vouched for the sidecar

    def generator(self, name: str) -> Generator:
        """The generator stored under name ("G_ema", "G"); a UserError if there is none."""
        net = self.networks.get(name)
        if not isinstance(net, Generator):
            held = ", ".join(sorted(self.networks)) or "nothing"
            raise UserError(f"there is no generator {name!r} here, only: {held}")
        return net


def _kind(net: nn.Module) -> str:
    if isinstance(net, Generator):
        return "generator"
    if isinstance(net, Discriminator):
        return "discriminator"
    raise TypeError(f"can only save Generator and Discriminator networks, not {type(net).__name__}")


def save_networks(
    path: str | Path,
    networks: dict[str, nn.Module],
    cfg: Config,
    c_dim: int = 0,
    metadata: dict[str, Any] | None = None,
    extra_tensors: dict[str, torch.Tensor] | None = None,
) -> None:
    """Write path (.safetensors) and its .json sidecar; metadata must be JSON-serialisable.
    extra_tensors (a training checkpoint's optimiser state, say) are stored beside the
    networks' tensors and come back in LoadedNetworks.extra."""
    path = Path(path)
    if path.suffix != ".safetensors":
        raise UserError(f"network files end in .safetensors, got {path}")
    if EXTRA in networks:
        raise ValueError(f"{EXTRA!r} names the extra tensors; call the network something else")
    tensors = {
        f"{name}.{key}": value.detach().to("cpu").contiguous()
        for name, net in networks.items()
        for key, value in net.state_dict().items()
    }
    for key, value in (extra_tensors or {}).items():
        tensors[f"{EXTRA}.{key}"] = value.detach().to("cpu").contiguous()
    sidecar = {
        "format": FORMAT,
        "heroforge_version": heroforge.__version__,
        "torch_version": torch.__version__,
        "c_dim": c_dim,
        "networks": {name: _kind(net) for name, net in networks.items()},
        "config": cfg.to_dict(),
        "metadata": metadata or {},
    }
    # Serialised before anything is written, so metadata that is not JSON leaves no files.
    # The tensor file vouches for the sidecar's content, the sidecar for the tensor file.
    blob = safetensors_save(tensors, metadata={SIDECAR_DIGEST_KEY: sidecar_digest(sidecar)})
    sidecar[rundir.SHA256_KEY] = hashlib.sha256(blob).hexdigest()
    text = json.dumps(sidecar, indent=2, sort_keys=True) + "\n"
    atomic_write_bytes(path, blob)
    atomic_write_bytes(rundir.sidecar_path(path), text.encode("utf-8"))


def _read_sidecar(path: Path) -> dict[str, Any]:
    json_path = rundir.sidecar_path(path)
    try:
        sidecar = json.loads(json_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{json_path} is missing: it holds the config of {path.name}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UserError(f"cannot read {json_path}: {err}") from None
    if not isinstance(sidecar, dict) or sidecar.get("format") != FORMAT:
        raise UserError(f"{json_path} is not a heroforge network file (format {FORMAT})")
    networks = sidecar.get("networks")
    if not isinstance(networks, dict) or not all(k in BUILDERS for k in networks.values()):
        raise UserError(f"{json_path}: 'networks' must map names to {' or '.join(BUILDERS)}")
    if not isinstance(sidecar.get("c_dim"), int) or sidecar["c_dim"] < 0:
        raise UserError(f"{json_path}: 'c_dim' must be a non-negative integer")
    return sidecar


def load_networks(path: str | Path, device: str | torch.device = "cpu") -> LoadedNetworks:
    """Rebuild the networks saved at path from their config and load their tensors, verified."""
    path = Path(path)
    sidecar = _read_sidecar(path)
    try:
        blob = path.read_bytes()
    except OSError as err:
        raise UserError(f"cannot read {path}: {err}") from None
    if hashlib.sha256(blob).hexdigest() != sidecar.get(rundir.SHA256_KEY):
        raise UserError(
            f"{path} does not match {rundir.sidecar_path(path).name} (corrupted or half-written)"
        )
    header, file_metadata = read_header(path, blob)
    signed = sidecar_is_signed(path, sidecar, file_metadata)
    cfg = config_from_dict(sidecar["config"])
    c_dim = sidecar["c_dim"]
    with ShapesOnly():  # what the sidecar claims costs no memory
        claimed = {
            name: BUILDERS[kind](cfg, c_dim=c_dim) for name, kind in sidecar["networks"].items()
        }
    check_claims(path, claimed, header, EXTRA)
    try:
        tensors = safetensors_load(blob)
    except (SafetensorError, ValueError) as err:
        raise UserError(f"{path} is not a valid safetensors file: {err}") from None
    networks = {}
    for name, kind in sidecar["networks"].items():
        net = BUILDERS[kind](cfg, c_dim=c_dim)
        net.load_state_dict({key: tensors[f"{name}.{key}"] for key in net.state_dict()})
        networks[name] = net.to(device)
    extra = {k[len(EXTRA) + 1 :]: v for k, v in tensors.items() if k.startswith(EXTRA + ".")}
    metadata = sidecar.get("metadata")
    meta = metadata if isinstance(metadata, dict) else {}
    return LoadedNetworks(networks, cfg, c_dim, meta, extra, sidecar_signed=signed)
