"""The modulated convolution of StyleGAN2 (paper section 2.2), in two interchangeable forms.

Each image n has its own weight w'[n] = w * s[n] (styles scale the input channels), and with
demodulation each output channel of w'[n] is divided by its L2 norm, which replaces AdaIN's
instance normalisation. Two ways to compute the same thing:

- "grouped": build the N weights and run one grouped convolution with N groups.
- "split":   scale the activations by s before a shared-weight convolution and by the
             demodulation coefficients after it (the official non-fused path).

Which is faster depends on the batch, the channels, the resolution, the device and whether a
backward pass follows, so "auto" times both once per case and remembers the winner.
"""

from __future__ import annotations

import time
from typing import Literal

import torch

from heroforge.nets.ops import conv2d_resample

ModConvForm = Literal["auto", "grouped", "split"]
FORMS: tuple[ModConvForm, ...] = ("auto", "grouped", "split")


def modulated_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    styles: torch.Tensor,
    *,
    demodulate: bool = True,
    up: int = 1,
    resample_filter: torch.Tensor | None = None,
    noise: torch.Tensor | None = None,
    gain: float = 1.0,
    form: ModConvForm = "split",
) -> torch.Tensor:
    """gain * (conv(x, weight modulated by styles [and demodulated]) + noise).

    x: [N, I, H, W]; weight: [O, I, k, k]; styles: [N, I]; noise broadcasts to [N, O, H', W'].
    gain lets the caller fold an activation gain into the per-channel scale instead of spending
    another pass over the output. Demodulation makes the result independent of weight's scale.
    """
    if form == "auto":
        form = PLANNER.choose(x, weight, styles, demodulate, up, resample_filter, noise)
    n = x.shape[0]
    out_channels, in_channels, kh, kw = weight.shape
    if x.dtype == torch.float16 and demodulate:
        # fp16 headroom: bring weight and styles near unit size first; demodulation undoes it.
        weight = weight * (
            weight[0].numel() ** -0.5 / weight.norm(float("inf"), dim=[1, 2, 3], keepdim=True)
        )
        styles = styles / styles.norm(float("inf"), dim=1, keepdim=True)
    scale = None  # per image and output channel, applied after the convolution
    if demodulate:
        # |w'[n, o]|^2 = sum_i s[n, i]^2 * sum_kk w[o, i]^2: no per-sample weight tensor needed.
        sq = styles.square() @ weight.square().sum(dim=[2, 3]).t()
        scale = (sq + 1e-8).rsqrt() * gain
    elif gain != 1:
        scale = styles.new_full([n, out_channels], gain)
    if noise is not None:
        noise = (noise * gain if gain != 1 else noise).to(x.dtype)

    if form == "split":
        x = conv2d_resample(x, weight.to(x.dtype), resample_filter, up=up, input_scale=styles)
        if scale is None:
            return x if noise is None else x + noise
        scale = scale.to(x.dtype).reshape(n, out_channels, 1, 1)
        return x * scale if noise is None else torch.addcmul(noise, x, scale)

    w = weight.unsqueeze(0) * styles.reshape(n, 1, in_channels, 1, 1)
    if scale is not None:
        w = w * scale.reshape(n, out_channels, 1, 1, 1)
    w = w.to(x.dtype).reshape(n * out_channels, in_channels, kh, kw)
    x = x.reshape(1, n * in_channels, *x.shape[2:])
    x = conv2d_resample(x, w, resample_filter, up=up, groups=n)
    x = x.reshape(n, out_channels, *x.shape[2:])
    return x if noise is None else x + noise


class ModConvPlanner:
    """Times both forms of a modulated convolution once per case and remembers the faster.

    A case is everything that changes the speed: device, dtype, memory format, shapes, up,
    demodulation, noise and whether autograd will run a backward pass (then that is timed too).
    Timing uses throwaway copies of the tensors, so the real graph is untouched. The forms run
    alternately and the best time of each counts, so a burst of load from other processes
    (which only ever adds time) is unlikely to favour one. "grouped" must also win by a margin:
    a wrong pick of it costs far more (its backward pass is slow on the CPU) than of "split".
    """

    def __init__(
        self,
        repeats: int = 3,  # timed runs per form, after one warm-up each ...
        min_seconds: float = 0.05,  # ... and more, up to max_repeats, until this much was timed
        max_repeats: int = 20,  # (small cases get more runs: their timings are noisier)
        max_seconds: float = 1.0,  # but stop once this much was timed (big cases: one round)
        margin: float = 0.9,  # "grouped" wins only below this fraction of the "split" time
    ) -> None:
        self.repeats = repeats
        self.min_seconds = min_seconds
        self.max_repeats = max_repeats
        self.max_seconds = max_seconds
        self.margin = margin
        self.choices: dict[tuple, ModConvForm] = {}  # case -> winning form

    def choose(
        self,
        x: torch.Tensor,
        weight: torch.Tensor,
        styles: torch.Tensor,
        demodulate: bool,
        up: int,
        resample_filter: torch.Tensor | None,
        noise: torch.Tensor | None,
    ) -> ModConvForm:
        if x.device.type == "meta" or torch.compiler.is_compiling():
            return "split"  # nothing to time; "split" is the form torch.compile traces best
        needs_grad = x.requires_grad or weight.requires_grad or styles.requires_grad
        backward = torch.is_grad_enabled() and needs_grad
        key = (
            x.device.type,
            x.dtype,
            x.is_contiguous(memory_format=torch.channels_last),
            tuple(x.shape),
            tuple(weight.shape),
            demodulate,
            up,
            noise is not None,
            backward,
        )
        if key not in self.choices:
            kwargs = {
                "demodulate": demodulate,
                "up": up,
                "resample_filter": resample_filter,
                "noise": None if noise is None else noise.detach(),
            }
            self.choices[key] = self._measure((x, weight, styles), kwargs, backward)
        return self.choices[key]

    def _measure(
        self, tensors: tuple[torch.Tensor, ...], kwargs: dict, backward: bool
    ) -> ModConvForm:
        device = tensors[0].device
        with torch.no_grad():
            copies = [t.detach().clone().requires_grad_(backward) for t in tensors]

        def run(form: ModConvForm) -> float:
            _synchronize(device)
            start = time.perf_counter()
            with torch.set_grad_enabled(backward):
                out = modulated_conv2d(*copies, **kwargs, form=form)
                if backward:
                    out.backward(torch.ones_like(out))
            _synchronize(device)
            return time.perf_counter() - start

        best: dict[ModConvForm, float] = {"split": float("inf"), "grouped": float("inf")}
        for form in best:
            run(form)  # warm-up: kernel choice, allocations
        spent = 0.0
        for rounds in range(1, self.max_repeats + 1):
            for form in best:
                seconds = run(form)
                best[form] = min(best[form], seconds)
                spent += seconds
            if (rounds >= self.repeats and spent >= self.min_seconds) or spent >= self.max_seconds:
                break
        return "grouped" if best["grouped"] < self.margin * best["split"] else "split"


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


PLANNER = ModConvPlanner()  # shared by every layer, so G and its EMA copy time each case once
