"""The synthesis network: ws [N, num_ws, w_dim] -> image [N, C, R, R] (StyleGAN2, config F).

A learned 4x4 constant goes through one block per resolution, b4 ... b{R}. Every block doubles
the resolution (except b4) with two modulated 3x3 convolutions, each followed by per-pixel noise,
bias and leaky ReLU. Each convolution and each toRGB consumes one w, so different ws per layer
mix styles. With the "skip" architecture every block adds its toRGB output to the upsampled
image of the block below.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn

from heroforge.nets.layers import (
    Conv2dLayer,
    FullyConnectedLayer,
    ReducedPrecision,
    active_clamp,
    block_channels,
    memory_format,
)
from heroforge.nets.modconv import FORMS, ModConvForm, modulated_conv2d
from heroforge.nets.ops import ACTIVATION_GAINS, bias_act, setup_filter, upsample2d

NoiseMode = Literal["random", "const", "none"]
NOISE_MODES: tuple[NoiseMode, ...] = ("random", "const", "none")


class SynthesisLayer(nn.Module):
    """Modulated 3x3 convolution, optional 2x upsampling, noise, bias and leaky ReLU."""

    resample_filter: torch.Tensor | None  # buffers, declared for the type checker
    noise_const: torch.Tensor

    def __init__(
        self,
        in_channels: int,  # input feature maps
        out_channels: int,  # output feature maps
        w_dim: int,  # size of w, mapped to one style per input channel
        resolution: int,  # output resolution (the size of the noise)
        up: int = 1,  # 2 = upsample 2x first
        resample_filter: torch.Tensor | None = None,  # FIR filter for up=2
        conv_clamp: float | None = None,  # clamp outputs to +-N on CUDA; None = never
        modconv: ModConvForm = "auto",  # how to run the modulated convolution
    ) -> None:
        super().__init__()
        self.resolution = resolution
        self.up = up
        self.conv_clamp = conv_clamp
        self.modconv = modconv
        if resample_filter is not None:
            self.register_buffer("resample_filter", resample_filter, persistent=False)
        else:
            self.resample_filter = None
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1.0)  # styles start at 1
        # No 1/sqrt(fan_in) gain here: demodulation makes the output independent of the scale.
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 3, 3))
        self.register_buffer("noise_const", torch.randn(resolution, resolution))
        self.noise_strength = nn.Parameter(torch.zeros([]))  # starts without noise
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def forward(
        self, x: torch.Tensor, w: torch.Tensor, noise_mode: NoiseMode = "random", gain: float = 1.0
    ) -> torch.Tensor:
        styles = self.affine(w)
        strength = self.noise_strength.to(x.dtype)
        noise = None
        if noise_mode == "random":
            shape = (x.shape[0], 1, self.resolution, self.resolution)
            noise = torch.randn(shape, device=x.device, dtype=x.dtype) * strength
        elif noise_mode == "const":
            noise = self.noise_const.to(x.dtype) * strength
        act_gain = ACTIVATION_GAINS["lrelu"] * gain
        # The activation gain joins the demodulation scale (one multiply for both), and x is
        # then fresh, so bias and activation run in place: g * lrelu(y + b) == lrelu(g*y + g*b).
        x = modulated_conv2d(
            x,
            self.weight,
            styles,
            up=self.up,
            resample_filter=self.resample_filter,
            noise=noise,
            gain=act_gain,
            form=self.modconv,
        )
        clamp = active_clamp(self.conv_clamp, x)
        clamp = None if clamp is None else clamp * gain
        return bias_act(x, self.bias * act_gain, "lrelu", gain=1.0, clamp=clamp, fresh=True)

    def extra_repr(self) -> str:
        out_channels, in_channels = self.weight.shape[:2]
        return f"{in_channels}->{out_channels}, resolution={self.resolution}, up={self.up}"


class ToRGBLayer(nn.Module):
    """Modulated 1x1 convolution to image channels, without demodulation (keeps colour scale)."""

    def __init__(
        self,
        in_channels: int,  # input feature maps
        out_channels: int,  # image channels
        w_dim: int,  # size of w
        conv_clamp: float | None = None,  # clamp outputs to +-N on CUDA; None = never
        modconv: ModConvForm = "auto",  # how to run the modulated convolution
    ) -> None:
        super().__init__()
        self.conv_clamp = conv_clamp
        self.modconv = modconv
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.weight_gain = 1 / math.sqrt(in_channels)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        # Without demodulation the weight needs its equalised-lr gain; it rides on the styles.
        styles = self.affine(w) * self.weight_gain
        x = modulated_conv2d(x, self.weight, styles, demodulate=False, form=self.modconv)
        return bias_act(x, self.bias, clamp=active_clamp(self.conv_clamp, x), fresh=True)


class SynthesisBlock(ReducedPrecision, nn.Module):
    resample_filter: torch.Tensor  # a buffer, declared for the type checker

    def __init__(
        self,
        in_channels: int,  # feature maps from the block below; 0 = first block (constant input)
        out_channels: int,  # feature maps of this block
        w_dim: int,  # size of w
        resolution: int,  # output resolution of this block
        img_channels: int,  # image channels
        is_last: bool,  # the block at the image resolution
        architecture: str = "skip",  # "orig", "skip" or "resnet"
        conv_clamp: float | None = None,  # clamp outputs to +-N on CUDA; None = never
        use_fp16: bool = False,  # a top resolution: may run in reduced precision (layers.py)
        channels_last: bool | None = None,  # channels-last layout; None = automatic (layers.py)
        modconv: ModConvForm = "auto",  # how to run the modulated convolutions
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.resolution = resolution
        self.architecture = architecture
        self.use_fp16 = use_fp16
        self.channels_last = channels_last
        self.register_buffer("resample_filter", setup_filter(), persistent=False)
        self.num_conv = 0
        self.num_torgb = 0
        if in_channels == 0:
            self.const = nn.Parameter(torch.randn(out_channels, resolution, resolution))
        else:
            self.conv0 = SynthesisLayer(
                in_channels,
                out_channels,
                w_dim,
                resolution,
                up=2,
                resample_filter=self.resample_filter,
                conv_clamp=conv_clamp,
                modconv=modconv,
            )
            self.num_conv += 1
        self.conv1 = SynthesisLayer(
            out_channels, out_channels, w_dim, resolution, conv_clamp=conv_clamp, modconv=modconv
        )
        self.num_conv += 1
        if is_last or architecture == "skip":
            self.torgb = ToRGBLayer(
                out_channels, img_channels, w_dim, conv_clamp=conv_clamp, modconv=modconv
            )
            self.num_torgb += 1
        if in_channels and architecture == "resnet":
            self.skip = Conv2dLayer(
                in_channels, out_channels, 1, bias=False, up=2, resample_filter=self.resample_filter
            )

    def forward(
        self,
        x: torch.Tensor | None,
        img: torch.Tensor | None,
        ws: torch.Tensor,
        noise_mode: NoiseMode = "random",
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(features, image so far) -> (features, image); ws: [N, num_conv + num_torgb, w_dim]."""
        w_iter = iter(ws.unbind(dim=1))
        dtype = self.compute_dtype(ws)
        if x is None:
            x = self.const.unsqueeze(0).repeat(ws.shape[0], 1, 1, 1)  # a copy: no view of a leaf
        x = x.to(dtype=dtype, memory_format=memory_format(self.channels_last, x, dtype, self))

        if self.in_channels == 0:
            x = self.conv1(x, next(w_iter), noise_mode)
        elif self.architecture == "resnet":
            y = self.skip(x, gain=math.sqrt(0.5))
            x = self.conv0(x, next(w_iter), noise_mode)
            x = self.conv1(x, next(w_iter), noise_mode, gain=math.sqrt(0.5))
            x = y.add_(x)
        else:
            x = self.conv0(x, next(w_iter), noise_mode)
            x = self.conv1(x, next(w_iter), noise_mode)

        if img is not None:
            img = upsample2d(img, self.resample_filter)
        if self.num_torgb:
            y = self.torgb(x, next(w_iter)).to(
                dtype=torch.float32, memory_format=torch.contiguous_format
            )
            img = y if img is None else img.add_(y)
        return x, img


class SynthesisNetwork(nn.Module):
    def __init__(
        self,
        w_dim: int,  # size of w
        img_resolution: int,  # output resolution (a power of two >= 4)
        img_channels: int,  # output channels
        channel_base: int = 32768,  # feature maps at r: min(channel_base // r, channel_max)
        channel_max: int = 512,  # cap on feature maps
        num_fp16_res: int = 0,  # on CUDA, run this many highest resolutions in fp16
        conv_clamp: float | None = None,  # clamp conv outputs to +-N on CUDA; None = never
        architecture: str = "skip",  # "orig", "skip" or "resnet"
        channels_last: bool | None = None,  # channels-last layout; None = automatic (layers.py)
        modconv: ModConvForm = "auto",  # "grouped", "split", or "auto" (time both, keep the faster)
    ) -> None:
        super().__init__()
        log2 = int(math.log2(img_resolution))
        if img_resolution != 2**log2 or img_resolution < 4:
            raise ValueError(f"img_resolution must be a power of two >= 4, got {img_resolution}")
        if architecture not in ("orig", "skip", "resnet"):
            raise ValueError(f"unknown synthesis architecture {architecture!r}")
        if modconv not in FORMS:
            raise ValueError(f"modconv must be one of {FORMS}, got {modconv!r}")
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.block_resolutions = [2**i for i in range(2, log2 + 1)]
        fp16_resolution = max(2 ** (log2 + 1 - num_fp16_res), 8)
        self.num_ws = 0
        for res in self.block_resolutions:
            block = SynthesisBlock(
                in_channels=block_channels(res // 2, channel_base, channel_max) if res > 4 else 0,
                out_channels=block_channels(res, channel_base, channel_max),
                w_dim=w_dim,
                resolution=res,
                img_channels=img_channels,
                is_last=res == img_resolution,
                architecture=architecture,
                conv_clamp=conv_clamp,
                use_fp16=res >= fp16_resolution,
                channels_last=channels_last,
                modconv=modconv,
            )
            self.num_ws += block.num_conv + (block.num_torgb if res == img_resolution else 0)
            setattr(self, f"b{res}", block)

    def blocks(self) -> list[SynthesisBlock]:
        return [getattr(self, f"b{res}") for res in self.block_resolutions]

    def forward(self, ws: torch.Tensor, noise_mode: NoiseMode = "random") -> torch.Tensor:
        """ws [N, num_ws, w_dim] -> fp32 images [N, img_channels, R, R], roughly in [-1, 1]."""
        if ws.ndim != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(
                f"expected ws of shape [N, {self.num_ws}, {self.w_dim}], got {tuple(ws.shape)}"
            )
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
        ws = ws.to(torch.float32)
        x = img = None
        w_idx = 0
        for block in self.blocks():
            # A block's toRGB shares its w with the next block's first conv.
            block_ws = ws.narrow(1, w_idx, block.num_conv + block.num_torgb)
            x, img = block(x, img, block_ws, noise_mode)
            w_idx += block.num_conv
        assert img is not None  # the last block always has a toRGB
        return img

    def extra_repr(self) -> str:
        return f"w_dim={self.w_dim}, num_ws={self.num_ws}, resolution={self.img_resolution}"
