"""What a network file claims, checked before anything is built from it (weights.py uses it).

A network file is a safetensors file and a JSON sidecar. The sidecar records the SHA-256 of the
tensor file; the tensor file's header metadata records the SHA-256 of the sidecar's content
(everything but that checksum, as canonical JSON). So an edit of either file is found, down to
one digit of a counter, a learning rate or ADA's p, and there is no circle: the sidecar's digest
leaves out the one field that depends on the tensor file. Files written before the digest
existed have none; they load, and the caller says so (the shape checks below still hold).

Then the shapes: the networks the sidecar describes are built with meta tensors (ShapesOnly:
shapes, no memory) and every tensor's name, shape and dtype is compared with the tensor file's
header, so the real networks hold as many values as the file. A sidecar that claims a huge network
(c_dim = 8,000,000 next to a 7 MB file) is refused at the cost of its header, before a real
network is built.
"""

from __future__ import annotations

import hashlib
import json
import numbers
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from heroforge import rundir
from heroforge.errors import UserError

SIDECAR_DIGEST_KEY = "heroforge_sidecar_sha256"  # in the tensor file's header metadata
HEADER_LIMIT = 100 * 1024 * 1024  # safetensors' own limit on the JSON header's size

# torch dtype -> the name safetensors' header gives it
SAFETENSORS_DTYPES = {
    torch.float64: "F64",
    torch.float32: "F32",
    torch.float16: "F16",
    torch.bfloat16: "BF16",
    torch.int64: "I64",
    torch.int32: "I32",
    torch.int16: "I16",
    torch.int8: "I8",
    torch.uint8: "U8",
    torch.bool: "BOOL",
}


@dataclass(frozen=True)
class TensorEntry:
    dtype: str  # safetensors' name: "F32", "I64", ...
    shape: tuple[int, ...]


def sidecar_digest(sidecar: dict[str, Any]) -> str:
    """The SHA-256 of the sidecar's content without its checksum of the tensor file. Canonical
    JSON (sorted keys, no spaces; floats print as they parse), so reformatting the file keeps
    the digest and changing any value changes it."""
    content = {k: v for k, v in sidecar.items() if k != rundir.SHA256_KEY}
    text = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def read_header(path: Path, blob: bytes) -> tuple[dict[str, TensorEntry], dict[str, str]]:
    """The tensors' names, dtypes and shapes and the file's metadata, from the header at the
    start of a safetensors file; no tensor is made."""
    size = int.from_bytes(blob[:8], "little") if len(blob) >= 8 else -1
    if not 0 < size <= min(HEADER_LIMIT, len(blob) - 8):
        raise UserError(f"{path} is not a valid safetensors file (no header)")
    try:
        header = json.loads(blob[8 : 8 + size])
    except (UnicodeDecodeError, ValueError):
        raise UserError(
            f"{path} is not a valid safetensors file (its header is not JSON)"
        ) from None
    if not isinstance(header, dict):
        raise UserError(f"{path} is not a valid safetensors file (its header is not a mapping)")
    metadata = header.pop("__metadata__", None) or {}
    tensors = {}
    for name, entry in header.items():
        try:
            shape = tuple(int(n) for n in entry["shape"])
            tensors[name] = TensorEntry(str(entry["dtype"]), shape)
        except (TypeError, KeyError, ValueError):
            raise UserError(f"{path}: the header's entry for {name} is malformed") from None
    if not isinstance(metadata, dict):
        raise UserError(f"{path}: the header's metadata is not a mapping")
    return tensors, metadata


def sidecar_is_signed(path: Path, sidecar: dict[str, Any], metadata: dict[str, str]) -> bool:
    """True when the tensor file vouches for the sidecar's content; False for a file written
    before sidecars were signed; a UserError when the sidecar was changed since."""
    recorded = metadata.get(SIDECAR_DIGEST_KEY)
    if recorded is None:
        return False
    if recorded != sidecar_digest(sidecar):
        raise UserError(
            f"{rundir.sidecar_path(path).name} was changed after {path.name} was written "
            "(its content does not match the checksum the tensor file holds)"
        )
    return True


def check_claims(
    path: Path, claimed: dict[str, nn.Module], header: dict[str, TensorEntry], extra_prefix: str
) -> None:
    """Refuse the file unless the networks the sidecar describes (built under ShapesOnly)
    hold exactly the tensors the header lists under their names, with the same shapes and
    dtypes, and the header lists nothing else (but extra_prefix's tensors). So the real
    networks built next hold as many values as the file, whatever the sidecar claims."""
    unused = dict(header)
    for name, net in claimed.items():
        for key, expected in net.state_dict().items():
            found = unused.pop(f"{name}.{key}", None)
            if found is None:
                raise UserError(
                    f"{path} has no tensor {name}.{key}: it was saved from a different network"
                )
            dtype = SAFETENSORS_DTYPES.get(expected.dtype, str(expected.dtype))
            if found.shape != tuple(expected.shape) or found.dtype != dtype:
                raise UserError(
                    f"{path}: {name}.{key} is {found.shape} {found.dtype}, but the config "
                    f"builds {tuple(expected.shape)} {dtype}"
                )
    stray = sorted(k for k in unused if not k.startswith(extra_prefix + "."))
    if stray:
        raise UserError(f"{path} holds tensors no network uses: {', '.join(stray[:5])}")


# Tensor factories the network constructors call; under ShapesOnly they make meta tensors.
_SIZED = (torch.empty, torch.zeros, torch.ones, torch.full)
_RANDOM = (torch.randn, torch.rand)
# Elementwise with a number (a weight divided by its learning-rate multiplier): same shape.
_WITH_A_NUMBER = (
    torch.Tensor.div,
    torch.Tensor.__truediv__,
    torch.Tensor.mul,
    torch.Tensor.__mul__,
    torch.Tensor.__rmul__,
)


class ShapesOnly(TorchFunctionMode):
    """Networks built under it hold meta tensors: every parameter's and buffer's shape and
    dtype, no memory, whatever sizes the config claims.

    Not `with torch.device("meta")`: there the first random draw and the first arithmetic on
    a meta tensor import sympy and torch._dynamo (measured: `heroforge generate` on a tiny
    model 1.6x slower, 5.8 s more on a loaded machine). Here the draws become empty meta
    tensors (values do not matter for shapes) and arithmetic with a number keeps the shape,
    so the constructors run no meta kernel; anything else still goes to torch, on meta
    tensors, only more slowly. Tensors made from Python data (the resampling filter's taps)
    stay real: they are as small as the data.
    """

    def __torch_function__(
        self,
        func: Callable[..., Any],
        types: Collection[type],
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        kwargs = dict(kwargs or {})
        if func in _RANDOM:
            kwargs.pop("generator", None)
            func = torch.empty
        if func in _SIZED:
            return func(*args, **{**kwargs, "device": "meta"})
        if func in _WITH_A_NUMBER and _meta_and_number(args):
            return torch.empty(args[0].shape, dtype=args[0].dtype, device="meta")
        return func(*args, **kwargs)


def _meta_and_number(args: tuple[Any, ...]) -> bool:
    return (
        len(args) == 2
        and isinstance(args[0], torch.Tensor)
        and args[0].is_meta
        and isinstance(args[1], numbers.Number)
    )
