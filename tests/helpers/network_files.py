"""Rewriting heroforge network files as someone who knows the format would: both checksums
made to match again, so that only the checks behind them can refuse the result."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

from safetensors.torch import load as safetensors_load
from safetensors.torch import save as safetensors_save

from heroforge.nets.integrity import SIDECAR_DIGEST_KEY, sidecar_digest
from heroforge.rundir import SHA256_KEY, sidecar_path


def rewrite_network_file(
    path: Path,
    edit: Callable[[dict], None] = lambda sidecar: None,  # changes the sidecar in place
    blob: bytes | None = None,  # a new tensor file, written as it is; None: re-sign the old one
    signed: bool = True,  # False: no sidecar digest in the header, as files had before it
) -> None:
    sidecar = json.loads(sidecar_path(path).read_text())
    edit(sidecar)
    if blob is None:
        tensors = safetensors_load(path.read_bytes())
        sidecar.pop(SHA256_KEY)
        metadata = {SIDECAR_DIGEST_KEY: sidecar_digest(sidecar)} if signed else None
        blob = safetensors_save(tensors, metadata=metadata)
    path.write_bytes(blob)
    sidecar[SHA256_KEY] = hashlib.sha256(blob).hexdigest()
    sidecar_path(path).write_text(json.dumps(sidecar, indent=2))
