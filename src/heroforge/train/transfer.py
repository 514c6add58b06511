"""Transfer learning: start a run from a trained model's weights (--init-from), and Freeze-D.

Starting from a model trained on a large set (a heroforge run, or an official model converted
with `heroforge import-official`) is how a few hundred pictures give good characters fast.
Only the weights of G, D and G_ema (with G's w_avg) come over: optimiser state, ADA p and the
counters start fresh, as in any new run. Freeze-D (Mo et al. 2020, "Freeze the Discriminator")
also keeps the first N discriminator blocks, those that read the image at the highest
resolutions, fixed: their generic low-level filters stay, and the few new images train the rest.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from heroforge import rundir
from heroforge.config import Config, NetworkConfig
from heroforge.errors import UserError
from heroforge.nets.discriminator import Discriminator
from heroforge.nets.generator import Generator
from heroforge.nets.loading import load_model
from heroforge.nets.weights import LoadedNetworks

# Network keys that change neither which weights exist nor what they mean: the precision on
# GPUs, the activation clamp that keeps fp16 finite, and the minibatch-std group, which the
# "auto" config derives from the batch per GPU.
RUNTIME_ONLY = ("num_fp16_res", "conv_clamp", "mbstd_group")


def frozen_parameters(D: Discriminator, blocks: int) -> list[nn.Parameter]:  # noqa: N803
    """The parameters of D's first `blocks` blocks counted from the image (b512, b256, ...)."""
    names = [f"b{res}" for res in D.block_resolutions[:blocks]]
    return [p for name in names for p in getattr(D, name).parameters()]


@dataclass
class InitModel:
    path: Path  # the network file the weights come from
    sha256: str  # its checksum, verified on loading
    G: Generator
    D: Discriminator
    G_ema: Generator
    metadata: dict[str, Any]

    def record(self) -> dict[str, Any]:
        """What run.json keeps: enough to know, and to check, where the run started from."""
        rec: dict[str, Any] = {"path": str(self.path.resolve()), "sha256": self.sha256}
        for key in ("source", "pickle", "pickle_sha256", "nimg"):
            if key in self.metadata:
                rec[key] = self.metadata[key]
        return rec

    def copy_to(self, networks: Mapping[str, nn.Module]) -> None:
        """Load the weights into the run's networks {"G": ..., "D": ..., "G_ema": ...}."""
        for name in ("G", "D", "G_ema"):
            try:
                networks[name].load_state_dict(getattr(self, name).state_dict())
            except RuntimeError as err:
                first = str(err).strip().splitlines()[0]
                raise UserError(f"--init-from {self.path}: {name} does not fit: {first}") from None


def _differences(loaded: LoadedNetworks, cfg: Config, c_dim: int) -> list[str]:
    diffs = []
    for f in dataclasses.fields(NetworkConfig):
        theirs, ours = getattr(loaded.cfg.network, f.name), getattr(cfg.network, f.name)
        if f.name not in RUNTIME_ONLY and theirs != ours:
            diffs.append(f"network.{f.name} is {theirs} there, {ours} here")
    for key in ("resolution", "channels"):
        theirs, ours = getattr(loaded.cfg.data, key), getattr(cfg.data, key)
        if theirs != ours:
            diffs.append(f"data.{key} is {theirs} there, {ours} here")
    if loaded.c_dim != c_dim:
        diffs.append(f"label size is {loaded.c_dim} there, {c_dim} here")
    return diffs


def load_init_model(model: str | Path, cfg: Config, c_dim: int) -> InitModel:
    """Load and check the model a run starts from; any mismatch is a one-line UserError."""
    try:
        loaded, path, _ = load_model(model, "cpu")
    except UserError as err:
        raise UserError(f"--init-from: {err}") from None
    diffs = _differences(loaded, cfg, c_dim)
    if diffs:
        raise UserError(f"--init-from {path} does not match this run's config: {'; '.join(diffs)}")
    nets = loaded.networks
    G = nets.get("G", nets.get("G_ema"))  # noqa: N806
    G_ema = nets.get("G_ema", G)  # noqa: N806
    D = nets.get("D")  # noqa: N806
    if not (
        isinstance(G, Generator) and isinstance(G_ema, Generator) and isinstance(D, Discriminator)
    ):
        held = ", ".join(sorted(nets)) or "nothing"
        raise UserError(f"--init-from {path}: needs a generator and D, the file holds {held}")
    # an official pickle has no sidecar: the checksum the reader took of the file stands for it
    official = path.suffix == ".pkl"
    sha256 = loaded.metadata["pickle_sha256"] if official else rundir.recorded_sha256(path)
    return InitModel(path, sha256, G, D, G_ema, loaded.metadata)
