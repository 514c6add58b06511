"""Full-state training checkpoints that survive kill -9, full disks and torn writes.

A checkpoint is a network file (heroforge.nets.weights: safetensors + JSON sidecar, loadable by
every heroforge command) that also carries the optimisers' tensors and, in its metadata, every
counter the loop needs. Writes are atomic (temp file, fsync, rename); `latest.json` then names
the new file with its checksum. Loading (nets/loading.load_latest) verifies the checksum and
falls back to the newest older checkpoint that verifies, so a damaged newest file costs one
checkpoint interval, not the run; a resume moves the damaged file into checkpoints/damaged/.
The last `keep` checkpoints are kept (the one just written always among them), plus the run's
best and the one best.json names.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from heroforge import rundir
from heroforge.config import Config
from heroforge.nets.weights import save_networks


def flatten_optimizer(prefix: str, opt: torch.optim.Optimizer) -> tuple[dict, dict]:
    """Optimizer state as (tensors by name, JSON-able rest)."""
    sd = opt.state_dict()
    tensors, plain = {}, {"param_groups": sd["param_groups"], "state": {}}
    for idx, entry in sd["state"].items():
        plain["state"][str(idx)] = {}
        for key, value in entry.items():
            if torch.is_tensor(value):
                tensors[f"{prefix}.{idx}.{key}"] = value
            else:
                plain["state"][str(idx)][key] = value
    return tensors, plain


# How the optimiser computes its step, chosen for the machine it runs on (fused Adam on GPUs):
# a resume keeps the live optimiser's choice. The saved one would put a CPU run's single-tensor
# Adam under a GPU's loss scaler, which fails at the first scaled step, and a GPU run's fused
# Adam on the CPU.
IMPLEMENTATION_FLAGS = ("fused", "foreach", "capturable", "differentiable")


def restore_optimizer(prefix: str, opt: torch.optim.Optimizer, tensors: dict, plain: dict) -> None:
    """Load the state flatten_optimizer saved into opt; opt keeps its IMPLEMENTATION_FLAGS."""
    state: dict[int, dict[str, Any]] = {}
    for idx, entry in plain["state"].items():
        state[int(idx)] = dict(entry)
    for name, value in tensors.items():
        if name.startswith(prefix + "."):
            idx, key = name[len(prefix) + 1 :].split(".", 1)
            state.setdefault(int(idx), {})[key] = value
    saved_groups = plain["param_groups"]
    if len(saved_groups) != len(opt.param_groups):
        raise ValueError(f"{prefix}: {len(saved_groups)} saved parameter groups for "
                         f"{len(opt.param_groups)}")  # fmt: skip
    groups = []
    for live, saved in zip(opt.param_groups, saved_groups, strict=True):
        group = {**saved, **{k: live[k] for k in IMPLEMENTATION_FLAGS if k in live}}
        if "betas" in group:
            group["betas"] = tuple(group["betas"])
        groups.append(group)
    opt.load_state_dict({"state": state, "param_groups": groups})


def save_checkpoint(
    folder: Path,
    nimg: int,
    networks: dict[str, torch.nn.Module],
    cfg: Config,
    c_dim: int,
    extra_tensors: dict[str, torch.Tensor],
    meta: dict[str, Any],
    keep: int,
    best_nimg: int | None = None,
) -> Path:
    """Write one checkpoint, point latest.json (and best.json, when best_nimg is this one) at
    it, and prune old ones beyond `keep` (this one counted first) except the best
    (best_nimg's and best.json's)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / rundir.checkpoint_name(nimg)
    new = not path.exists()  # a rollback saves again over the best snapshot it returned to
    try:
        save_networks(path, networks, cfg, c_dim, {**meta, "nimg": nimg}, extra_tensors)
    except BaseException:
        if new:  # tensors written, sidecar not (a full disk): space taken by a file none loads
            path.unlink(missing_ok=True)
            rundir.sidecar_path(path).unlink(missing_ok=True)
        raise
    rundir.write_marker(folder, rundir.LATEST, path.name, rundir.recorded_sha256(path))
    if best_nimg == nimg:
        rundir.mark_best(folder, path.name)
    # best.json may name another than best_nimg's: the user's "use as best" on the web page
    protected = {rundir.read_marker(folder, rundir.BEST)}
    if best_nimg is not None:
        protected.add(rundir.checkpoint_name(best_nimg))
    # The one just written counts as the newest: one named later (a damaged checkpoint that a
    # fallback passed over, if a resume could not set it aside) must not push it out.
    newest_first = [path, *(p for p in rundir.list_checkpoints(folder) if p != path)]
    for old in newest_first[keep:]:
        if old.name not in protected:
            old.unlink(missing_ok=True)
            rundir.sidecar_path(old).unlink(missing_ok=True)
    return path
