"""Layers with an equalised learning rate, shared by the generator and the discriminator.

Equalised learning rate (Karras et al. 2018, section 4.1): weights are stored as N(0, 1) / lr_mult
and multiplied by lr_mult / sqrt(fan_in) on every forward pass. Adam's updates are then the same
size relative to every weight, whatever its fan-in, and lr_mult < 1 slows a layer down (the
mapping network learns at 0.01x) without touching the optimiser.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as nnf
from torch import nn

from heroforge.nets.ops import ACTIVATION_GAINS, bias_act, conv2d_resample


def block_channels(resolution: int, channel_base: int, channel_max: int) -> int:
    """Feature maps at a resolution: fewer as the resolution grows, capped at channel_max."""
    return min(channel_base // resolution, channel_max)


def normalize_2nd_moment(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Scale each row of x to unit mean square (the mapping network's input normalisation)."""
    return x * (x.square().mean(dim=1, keepdim=True) + eps).rsqrt()


def memory_format(
    channels_last: bool | None, x: torch.Tensor, dtype: torch.dtype, block: nn.Module
) -> torch.memory_format:
    """The layout a block runs in. None = automatic:
    - on the CPU, channels-last unless the block's own weights are being trained in fp32:
      oneDNN's native layout, faster forward and input gradients (measured: convolutions 8%,
      transposed convolutions 35-75% and the depthwise FIR filters 2x). That covers
      generating, G inside D's phase and D inside G's phase. A block whose weights train in
      fp32 runs NCHW: oneDNN's fp32 channels-last weight gradients are far slower here (0.59 s
      against 0.32 s for a 3x3 conv on [8, 512, 32, 32]); a 64 px "auto" training step took
      about 14% less time with its trained blocks in NCHW (main step 17.8 s against 20.8 s,
      R1 + path-length step 32.8 s against 40.1 s). In bf16 that penalty is gone: channels-
      last weight gradients are as fast as NCHW's or faster, and forward, input gradients,
      transposed convolutions and FIR filters faster (benchmarks/conv_kernels.py --dtype
      bf16; issue 23's table: a 3x3 conv's forward + backward 63-66 ms against 64-72 ms);
    - on CUDA, channels-last for fp16/bf16 (tensor cores); fp32 stays NCHW, as in the official
      networks."""
    if channels_last is None and x.device.type == "cpu":
        trains = torch.is_grad_enabled() and any(p.requires_grad for p in block.parameters())
        channels_last = dtype != torch.float32 or not trains
    elif channels_last is None:
        channels_last = dtype != torch.float32
    return torch.channels_last if channels_last else torch.contiguous_format


class ReducedPrecision:
    """Mixed in by the blocks that may run in reduced precision (the top resolutions).

    use_fp16 comes from the network config (num_fp16_res). Which reduced type, and where, is
    a run-time choice, not part of the weights: by default fp16 on CUDA only, the official
    behaviour; set_half_dtype() makes it bf16, or fp16/bf16 on any device (training's
    precision setting, and the CPU tests of the GPU paths)."""

    use_fp16: bool = False
    half_dtype: torch.dtype | None = None  # None: fp16 on CUDA, fp32 elsewhere

    def compute_dtype(self, ref: torch.Tensor) -> torch.dtype:
        if not self.use_fp16:
            return torch.float32
        if self.half_dtype is not None:
            return self.half_dtype
        return torch.float16 if ref.is_cuda else torch.float32


def set_half_dtype(net: torch.nn.Module, dtype: torch.dtype | None) -> None:
    """The reduced type of every block of net that runs in reduced precision (see above)."""
    for module in net.modules():
        if isinstance(module, ReducedPrecision):
            module.half_dtype = dtype


def active_clamp(conv_clamp: float | None, x: torch.Tensor) -> float | None:
    """conv_clamp exists to keep fp16 finite: it runs on CUDA (as the official code) and
    wherever a layer runs in reduced precision, never in fp32 on the CPU (bit-exact tests)."""
    return conv_clamp if x.is_cuda or x.dtype != torch.float32 else None


class FullyConnectedLayer(nn.Module):
    def __init__(
        self,
        in_features: int,  # input size
        out_features: int,  # output size
        bias: bool = True,  # learn an additive bias
        bias_init: float = 0.0,  # initial value of the (effective) bias
        lr_multiplier: float = 1.0,  # learning-rate multiplier of this layer
        activation: str = "linear",  # "linear" or "lrelu"
    ) -> None:
        super().__init__()
        self.activation = activation
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_multiplier)
        # Stored divided by lr_mult so that bias_init is the effective start value.
        self.bias = (
            nn.Parameter(torch.full([out_features], bias_init / lr_multiplier)) if bias else None
        )
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The activation gain rides on the (small) weights: lrelu(g * y) == g * lrelu(y), g > 0.
        gain = ACTIVATION_GAINS[self.activation]
        w = self.weight.to(x.dtype) * (self.weight_gain * gain)
        b = None if self.bias is None else self.bias.to(x.dtype) * (self.bias_gain * gain)
        return bias_act(nnf.linear(x, w, b), act=self.activation, gain=1.0, fresh=True)

    def extra_repr(self) -> str:
        out_features, in_features = self.weight.shape
        return f"{in_features}->{out_features}, act={self.activation}, lr_mult={self.bias_gain:g}"


class Conv2dLayer(nn.Module):
    """A convolution with an odd square kernel, 'same' padding, optional 2x up/down (FIR)."""

    def __init__(
        self,
        in_channels: int,  # input channels
        out_channels: int,  # output channels
        kernel_size: int,  # width and height of the kernel
        bias: bool = True,  # learn a per-channel bias
        activation: str = "linear",  # "linear" or "lrelu"
        up: int = 1,  # 2 = upsample the output 2x
        down: int = 1,  # 2 = downsample the output 2x
        resample_filter: torch.Tensor | None = None,  # FIR filter for up/down (setup_filter)
        conv_clamp: float | None = None,  # clamp outputs to +-N on CUDA; None = never
    ) -> None:
        super().__init__()
        self.activation = activation
        self.up = up
        self.down = down
        self.conv_clamp = conv_clamp
        self.resample_filter: torch.Tensor | None
        if resample_filter is not None:
            self.register_buffer("resample_filter", resample_filter, persistent=False)
        else:
            self.resample_filter = None
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size**2)

    def forward(self, x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
        """act(conv(x) + b) * gain; gain > 0 is an extra output scale (resnet uses sqrt(0.5))."""
        act_gain = ACTIVATION_GAINS[self.activation] * gain
        w, w_gain = self.weight.to(x.dtype), self.weight_gain * act_gain
        b = None if self.bias is None else self.bias.to(x.dtype) * act_gain
        f, up, down = self.resample_filter, self.up, self.down
        if torch.is_grad_enabled() and self.weight.requires_grad and x.dtype == torch.float32:
            # Training this layer: autograd would keep the scaled weight w * w_gain for the
            # input's gradient (all of D's weights again, 73 MB at 64 px "auto"). The gain
            # moves past the convolution instead, into bias_act's multiply-add, which makes a
            # new tensor anyway: lrelu(g * conv(x, w) + b) == lrelu(g * (conv(x, w) + b / g)).
            # Not in fp16/bf16 blocks: there the unscaled weights would make the convolution's
            # output sqrt(fan-in) times bigger (25-70x), too little headroom for fp16.
            x = conv2d_resample(x, w, f, up=up, down=down)
            b, out_gain = (None if b is None else b / w_gain), w_gain
        else:
            x = conv2d_resample(x, w, f, up=up, down=down, bias=b, weight_gain=w_gain)
            b, out_gain = None, 1.0
        clamp = active_clamp(self.conv_clamp, x)
        clamp = None if clamp is None else clamp * gain
        return bias_act(x, b, self.activation, gain=out_gain, clamp=clamp, fresh=True)

    def extra_repr(self) -> str:
        out_channels, in_channels, k, _ = self.weight.shape
        resample = (
            f", up={self.up}" if self.up > 1 else f", down={self.down}" if self.down > 1 else ""
        )
        return f"{in_channels}->{out_channels}, k={k}, act={self.activation}{resample}"


class MinibatchStdLayer(nn.Module):
    """Append the standard deviation of features across small groups of images.

    A single generated image cannot reveal a lack of variety; its group's statistics can. The
    batch of N splits into N / G groups of G images, image i going to group i % (N / G); the
    C channels split into F sets whose std is averaged into F new feature maps per image.
    """

    def __init__(
        self,
        group_size: int,  # images per group; capped at the batch size
        num_channels: int = 1,  # F: feature maps appended
    ) -> None:
        super().__init__()
        self.group_size = group_size
        self.num_channels = num_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        g = min(self.group_size, n)
        if n % g:
            raise ValueError(f"minibatch std: batch {n} is not a multiple of the group size {g}")
        f = self.num_channels
        y = x.reshape(g, -1, f, c // f, h, w)  # [G, N/G, F, C/F, H, W]
        y = (y - y.mean(dim=0)).square().mean(dim=0)  # variance over the group
        y = (y + 1e-8).sqrt().mean(dim=[2, 3, 4])  # [N/G, F]: mean std per channel set
        y = y.reshape(-1, f, 1, 1).repeat(g, 1, h, w)  # back to one map per image
        return torch.cat([x, y.to(x.dtype)], dim=1)

    def extra_repr(self) -> str:
        return f"group_size={self.group_size}, num_channels={self.num_channels}"
