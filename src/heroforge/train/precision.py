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
- on the CPU "auto" means fp32 everywhere, which is also what makes runs bit-exact.

The regularisers' inner gradients (R1, path length) are taken unscaled, as the official code
does; only the final backward of each phase is scaled.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Precision:
    half: torch.dtype | None  # the top blocks' type; None = fp32 everywhere
    loss_scaling: bool  # dynamic loss scaling (fp16 only)

    @property
    def name(self) -> str:
        return {None: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}[self.half]


def resolve_precision(setting: str, device: torch.device) -> Precision:
    """The precision a train.precision setting means on this device."""
    if setting == "auto":
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


def make_scalers(precision: Precision, device: torch.device) -> dict[str, torch.amp.GradScaler]:
    """One loss scaler per network ("G", "D"); disabled ones pass losses and steps through."""
    return {net: torch.amp.GradScaler(device.type, enabled=precision.loss_scaling) for net in "GD"}
