"""Mixed precision for training: the reduced type of the top-resolution blocks, loss scaling.

The networks keep fp32 weights; the blocks at the network.num_fp16_res highest resolutions
compute in a reduced type (nets/layers.py: ReducedPrecision) with their outputs clamped
(conv_clamp). Which type is a run-time choice:

- bf16 has fp32's exponent range, so gradients cannot underflow: no loss scaling. GPUs from
  Ampere on have it, and it is what "auto" picks there.
- fp16 (older GPUs) has 5 exponent bits: small gradients flush to zero. Each network's loss is
  multiplied by a dynamic scale before backward; a step whose gradients hold inf/NaN is skipped
  and the scale halved, and it doubles after 2,000 good steps (torch.amp.GradScaler). One
  scaler per network, since G's and D's gradients differ in size by orders of magnitude. With
  the fused Adam used on GPUs the skip decision stays on the device (no synchronisation).
- on a CPU with native bf16 arithmetic (x86 avx512_bf16 or amx_bf16: Intel Cooper Lake /
  Sapphire Rapids, AMD Zen 4 and later) "auto" picks bf16: oneDNN's bf16 convolutions run about
  twice as fast as fp32 there (a 64 px "auto" training step 1.7x), and the blocks that use it
  are the ones the official code runs in fp16 on GPUs. Other CPUs emulate bf16, slowly: fp32.
  "fp32" stays for runs that must be bit-identical across machines (bf16 rounding follows the
  CPU's kernels; on one machine a bf16 run is as reproducible as an fp32 one).

The regularisers' inner gradients (R1, path length) are taken unscaled, as the official code
does; only the final backward of each phase is scaled.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import torch

# /proc/cpuinfo flags of x86 CPUs that compute bf16 natively (dot products in AVX-512 or AMX
# tiles); oneDNN uses them for bf16 convolutions and matrix products
NATIVE_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


@dataclass(frozen=True)
class Precision:
    half: torch.dtype | None  # the top blocks' type; None = fp32 everywhere
    loss_scaling: bool  # dynamic loss scaling (fp16 only)

    @property
    def name(self) -> str:
        return {None: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}[self.half]


def resolve_precision(setting: str, device: torch.device) -> Precision:
    """The precision a train.precision setting means on this device."""
    if setting == "auto" and device.type == "cpu":
        setting = "bf16" if cpu_has_native_bf16() else "fp32"
    elif setting == "auto":
        if device.type != "cuda":
            return Precision(None, False)
        # bf16 natively from Ampere (compute capability 8) on; older GPUs only emulate it,
        # slowly (and torch.cuda.is_bf16_supported() says yes to emulation): fp16 there
        native_bf16 = torch.cuda.get_device_capability(device)[0] >= 8
        setting = "bf16" if native_bf16 else "fp16"
    if setting == "fp16":
        return Precision(torch.float16, True)
    if setting == "bf16":
        return Precision(torch.bfloat16, False)
    return Precision(None, False)


def precision_in_use(precision: Precision, num_fp16_res: int) -> str:
    """What the networks train in: the reduced type if any of their blocks runs in it
    (network.num_fp16_res > 0), else "fp32"."""
    return precision.name if num_fp16_res > 0 else "fp32"


@cache
def cpu_has_native_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether this machine's CPU has bf16 arithmetic in hardware (see NATIVE_BF16_FLAGS).
    Read from the kernel's CPU flags: torch's own check (mkldnn bf16 "supported") also says yes
    to CPUs that only emulate it with plain AVX-512. No /proc (macOS, Windows): no."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return False
    for line in text.splitlines():
        if line.startswith("flags"):
            return not NATIVE_BF16_FLAGS.isdisjoint(line.partition(":")[2].split())
    return False


def make_scalers(precision: Precision, device: torch.device) -> dict[str, torch.amp.GradScaler]:
    """One loss scaler per network ("G", "D"); disabled ones pass losses and steps through."""
    return {net: torch.amp.GradScaler(device.type, enabled=precision.loss_scaling) for net in "GD"}
