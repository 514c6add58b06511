"""Import an official StyleGAN2-ADA network pickle as heroforge networks, running nothing from it.

    read_official_pickle (official_pickle.py)  inert records: class names, arguments, tensors
    config_of (official_config.py)            the heroforge Config those arguments describe
    read_official (here)                      build G, D, G_ema, check and load every tensor
    import_official (here)                    save them with weights.save_networks; generate,
                                              train --init-from ... read the pickle directly
                                              through read_official (nets/loading.py)

Names: heroforge's layers carry the official attribute names (mapping.fc0, synthesis.b4.conv1,
b4.fc, ...), so an official tensor keeps its name. OFFICIAL_NAMES still spells out every name
the official networks have, so that any other tensor (another architecture's layers, a fork's
additions) is reported instead of silently dropped. The official layers also store their FIR
filter as a buffer named resample_filter; heroforge rebuilds it, so it is only checked.
"""

from __future__ import annotations

import hashlib
import re
import reprlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from heroforge.config import Config
from heroforge.errors import UserError, write_failure
from heroforge.nets.official_config import (
    D_PARAMS,
    G_PARAMS,
    config_of,
    constructor_arguments,
)
from heroforge.nets.official_pickle import OfficialPickle, PersistentObject, read_official_pickle
from heroforge.nets.ops import setup_filter
from heroforge.nets.weights import BUILDERS, LoadedNetworks, save_networks

MODEL_FILE = "model.safetensors"
KINDS = {"G": "generator", "D": "discriminator", "G_ema": "generator"}
CLASSES = {"generator": "Generator", "discriminator": "Discriminator"}
LAYER = r"(?:embed|fc\d+)\.(?:weight|bias)"  # a fully connected layer of a mapping network
OFFICIAL_NAMES = {
    "generator": re.compile(
        "|".join(
            [
                r"mapping\.w_avg",
                rf"mapping\.{LAYER}",
                r"synthesis\.b\d+\.const",
                r"synthesis\.b\d+\.conv[01]\.(?:weight|bias|noise_strength|noise_const)",
                r"synthesis\.b\d+\.(?:conv[01]|torgb)\.affine\.(?:weight|bias)",
                r"synthesis\.b\d+\.torgb\.(?:weight|bias)",
                r"synthesis\.b\d+\.skip\.weight",
            ]
        )
    ),
    "discriminator": re.compile(
        "|".join(
            [
                r"b\d+\.(?:fromrgb|conv0|conv1|skip)\.(?:weight|bias)",
                r"b4\.(?:fromrgb|conv|fc|out)\.(?:weight|bias)",
                rf"mapping\.{LAYER}",
            ]
        )
    ),
}
FILTER_BUFFER = "resample_filter"


def _check_family(path: Path, contents: OfficialPickle) -> None:
    """Refuse other network families early, with a message that says which they are."""
    for name, kind in KINDS.items():
        obj = contents.networks[name]
        if obj.class_name != CLASSES[kind]:
            shown = reprlib.repr(obj.class_name)
            raise UserError(f"{path}: {name} is a {shown}, not a StyleGAN2 {kind}")
        if any(child.class_name == "SynthesisInput" for _, child in obj.walk()):
            raise UserError(
                f"{path} holds StyleGAN3 (alias-free) networks; heroforge builds StyleGAN2"
            )


def _check_filter(where: str, name: str, tensor: torch.Tensor) -> None:
    expected = setup_filter()
    if tensor.shape != expected.shape or not torch.allclose(tensor.float(), expected):
        raise UserError(f"{where}.{name} is not the [1,3,3,1] filter heroforge's layers use")


def matched_tensors(
    where: str, kind: str, found: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """The state_dict for a heroforge network from the official tensors, every name and shape
    checked; expected is the state_dict of the network the config builds (on the meta device)."""
    state, unmapped = {}, []
    for name, tensor in found.items():
        if name.rsplit(".", 1)[-1] == FILTER_BUFFER:
            _check_filter(where, name, tensor)
        elif OFFICIAL_NAMES[kind].fullmatch(name) and name in expected:
            target = expected[name]
            if tensor.shape != target.shape:
                raise UserError(
                    f"{where}.{name} has shape {list(tensor.shape)}, but its constructor "
                    f"arguments build {list(target.shape)}"
                )
            if not tensor.is_floating_point():
                raise UserError(f"{where}.{name} holds {tensor.dtype} values, not floating point")
            state[name] = tensor.to(target.dtype)
        else:
            unmapped.append(name)
    if unmapped:
        raise UserError(f"{where} holds tensors heroforge has no place for: {_few(unmapped)}")
    missing = [name for name in expected if name not in state]
    if missing:
        raise UserError(f"{where} lacks tensors its network needs: {_few(missing)}")
    return state


def _few(names: list[str]) -> str:
    shown = ", ".join(name[:100] for name in sorted(names)[:3])  # names come from the file
    return shown + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def load_network(
    where: str, kind: str, obj: PersistentObject, cfg: Config, c_dim: int
) -> nn.Module:
    """Build the heroforge network and load the official tensors into it.

    The shapes are checked against a copy built on the meta device first: the arguments come
    from the file, and absurd ones must not allocate anything before they are found out.
    """
    build = BUILDERS[kind]
    with torch.device("meta"):
        expected = build(cfg, c_dim=c_dim).state_dict()
    state = matched_tensors(where, kind, obj.named_tensors(), expected)
    net = build(cfg, c_dim=c_dim)
    net.load_state_dict(state)
    return net


def _jsonable(value: object, depth: int = 0) -> Any:
    """Constructor arguments for the JSON sidecar: plain values, containers cut at depth 6."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if depth < 6 and isinstance(value, dict):
        return {str(k): _jsonable(v, depth + 1) for k, v in value.items()}
    if depth < 6 and isinstance(value, list | tuple):
        return [_jsonable(v, depth + 1) for v in value]
    return f"<{type(value).__name__}>"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _metadata(path: Path, contents: OfficialPickle) -> dict[str, Any]:
    nets = contents.networks
    arguments = {
        "G": constructor_arguments("G", nets["G"], G_PARAMS).values,
        "D": constructor_arguments("D", nets["D"], D_PARAMS).values,
    }
    metadata: dict[str, Any] = {
        "source": "official pickle",
        "pickle": path.name,
        "pickle_sha256": _sha256(path),
        "official_arguments": _jsonable(arguments),
        "training_set": _jsonable(contents.training_set_kwargs),
    }
    p = None if contents.augment_pipe is None else contents.augment_pipe.tensors.get("p")
    if p is not None and p.numel() == 1 and p.is_floating_point():
        metadata["augment_p"] = float(p)  # where ADA's p stood when the pickle was written
    return metadata


@dataclass(frozen=True)
class ImportSummary:
    """What import_official wrote."""

    path: Path  # out/model.safetensors (its config beside it in model.json)
    resolution: int  # the generator's output side in pixels
    channels: int  # 3 (RGB) or 1 (greyscale)
    c_dim: int  # number of classes; 0 for an unconditional network
    config: Config  # the heroforge config that rebuilds the networks exactly


def read_official(pkl: str | Path) -> LoadedNetworks:
    """G, D and G_ema of an official StyleGAN2-ADA pickle as heroforge networks (on the CPU),
    with the metadata import_official records. Anything the file holds beyond plain data, or
    networks heroforge cannot reproduce exactly, is refused with a one-line UserError."""
    pkl = Path(pkl)
    contents = read_official_pickle(pkl)
    _check_family(pkl, contents)
    cfg, c_dim = config_of(pkl, contents)
    networks = {
        name: load_network(f"{pkl}: {name}", kind, contents.networks[name], cfg, c_dim)
        for name, kind in KINDS.items()
    }
    return LoadedNetworks(networks, cfg, c_dim, _metadata(pkl, contents))


def import_official(pkl: str | Path, out: str | Path) -> ImportSummary:
    """Read an official StyleGAN2-ADA pickle and write out/model.safetensors (+ .json);
    nothing is written when read_official refuses the file."""
    target = Path(out) / MODEL_FILE
    if target.exists():
        raise UserError(f"{target} already exists; choose another --out or remove it")
    loaded = read_official(pkl)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise write_failure(f"cannot create {target.parent}", err) from None
    save_networks(target, loaded.networks, loaded.cfg, loaded.c_dim, metadata=loaded.metadata)
    cfg = loaded.cfg
    return ImportSummary(
        path=target,
        resolution=cfg.data.resolution,
        channels=cfg.data.channels,
        c_dim=loaded.c_dim,
        config=cfg,
    )
