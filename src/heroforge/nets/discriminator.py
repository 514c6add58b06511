"""The StyleGAN2 discriminator ("resnet" by default), built from a heroforge Config.

One block per resolution from the image down to 8x8 (b{R} ... b8), each two 3x3 convolutions
with 2x FIR downsampling in the second; the "resnet" architecture adds a 1x1 downsampling skip
and scales the sum by sqrt(0.5) to keep its variance. The 4x4 epilogue (b4) appends minibatch
standard deviations, then conv, fully connected, and the output layer. With labels, the output
is projected onto an embedding of the label (Miyato & Koyama 2018).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from heroforge.config import Config
from heroforge.nets.layers import (
    Conv2dLayer,
    FullyConnectedLayer,
    MinibatchStdLayer,
    ReducedPrecision,
    block_channels,
    memory_format,
)
from heroforge.nets.mapping import MappingNetwork
from heroforge.nets.ops import downsample2d, setup_filter

ARCHITECTURES = ("orig", "skip", "resnet")


class DiscriminatorBlock(ReducedPrecision, nn.Module):
    resample_filter: torch.Tensor  # a buffer, declared for the type checker

    def __init__(
        self,
        in_channels: int,  # feature maps from the block above; 0 = first block (reads the image)
        tmp_channels: int,  # feature maps inside the block
        out_channels: int,  # feature maps passed to the block below
        resolution: int,  # input resolution of this block
        img_channels: int,  # image channels
        architecture: str = "resnet",  # "orig", "skip" or "resnet"
        conv_clamp: float | None = None,  # clamp conv outputs to +-N on CUDA; None = never
        use_fp16: bool = False,  # a top resolution: may run in reduced precision (layers.py)
        channels_last: bool | None = None,  # channels-last layout; None = automatic (layers.py)
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.resolution = resolution
        self.architecture = architecture
        self.use_fp16 = use_fp16
        self.channels_last = channels_last
        self.register_buffer("resample_filter", setup_filter(), persistent=False)
        f = self.resample_filter
        if in_channels == 0 or architecture == "skip":
            self.fromrgb = Conv2dLayer(
                img_channels, tmp_channels, 1, activation="lrelu", conv_clamp=conv_clamp
            )
        self.conv0 = Conv2dLayer(
            tmp_channels, tmp_channels, 3, activation="lrelu", conv_clamp=conv_clamp
        )
        self.conv1 = Conv2dLayer(
            tmp_channels,
            out_channels,
            3,
            activation="lrelu",
            down=2,
            resample_filter=f,
            conv_clamp=conv_clamp,
        )
        if architecture == "resnet":
            self.skip = Conv2dLayer(
                tmp_channels, out_channels, 1, bias=False, down=2, resample_filter=f
            )

    def forward(
        self, x: torch.Tensor | None, img: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(features, image at this resolution) -> (features, image at half, for "skip")."""
        ref = img if x is None else x
        assert ref is not None  # the first block reads the image; the others get features
        dtype = self.compute_dtype(ref)
        layout = memory_format(self.channels_last, ref, dtype, self)
        if x is not None:
            x = x.to(dtype=dtype, memory_format=layout)
        if self.in_channels == 0 or self.architecture == "skip":
            assert img is not None  # the first block and every "skip" block get the image
            img = img.to(dtype=dtype, memory_format=layout)
            y = self.fromrgb(img)
            x = y if x is None else x + y
            img = downsample2d(img, self.resample_filter) if self.architecture == "skip" else None

        if self.architecture == "resnet":
            y = self.skip(x, gain=math.sqrt(0.5))
            x = self.conv1(self.conv0(x), gain=math.sqrt(0.5))
            x = y.add_(x)
        else:
            x = self.conv1(self.conv0(x))
        return x, img


class DiscriminatorEpilogue(nn.Module):
    """The 4x4 head: minibatch std, conv, fully connected, output (or projection on cmap)."""

    def __init__(
        self,
        in_channels: int,  # feature maps at 4x4
        cmap_dim: int,  # size of the label embedding; 0 = unconditional (one output)
        resolution: int,  # 4
        img_channels: int,  # image channels ("skip" reads the 4x4 image too)
        architecture: str = "resnet",  # "orig", "skip" or "resnet"
        mbstd_group_size: int = 4,  # images per minibatch-std group
        mbstd_num_channels: int = 1,  # minibatch-std feature maps; 0 = no minibatch std
        conv_clamp: float | None = None,  # clamp conv outputs to +-N on CUDA; None = never
    ) -> None:
        super().__init__()
        self.architecture = architecture
        self.cmap_dim = cmap_dim
        if architecture == "skip":
            self.fromrgb = Conv2dLayer(img_channels, in_channels, 1, activation="lrelu")
        self.mbstd = (
            MinibatchStdLayer(mbstd_group_size, mbstd_num_channels) if mbstd_num_channels else None
        )
        self.conv = Conv2dLayer(
            in_channels + mbstd_num_channels,
            in_channels,
            3,
            activation="lrelu",
            conv_clamp=conv_clamp,
        )
        self.fc = FullyConnectedLayer(in_channels * resolution**2, in_channels, activation="lrelu")
        self.out = FullyConnectedLayer(in_channels, cmap_dim or 1)

    def forward(
        self, x: torch.Tensor, img: torch.Tensor | None, cmap: torch.Tensor | None
    ) -> torch.Tensor:
        # The head always runs in fp32 (its few small layers gain nothing from fp16).
        x = x.to(dtype=torch.float32, memory_format=torch.contiguous_format)
        if self.architecture == "skip":
            assert img is not None  # "skip" passes the image down to the head
            x = x + self.fromrgb(img.to(torch.float32))
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = self.conv(x)
        x = self.out(self.fc(x.flatten(1)))
        if self.cmap_dim:
            assert cmap is not None  # a conditional discriminator maps its labels
            # Projection: the score is the inner product of features and the label embedding.
            x = (x * cmap).sum(dim=1, keepdim=True) / math.sqrt(self.cmap_dim)
        return x


class Discriminator(nn.Module):
    def __init__(
        self,
        c_dim: int,  # conditioning label size; 0 = unconditional
        img_resolution: int,  # input resolution (a power of two >= 8)
        img_channels: int,  # input channels
        architecture: str = "resnet",  # "orig", "skip" or "resnet"
        channel_base: int = 32768,  # feature maps at r: min(channel_base // r, channel_max)
        channel_max: int = 512,  # cap on feature maps
        num_fp16_res: int = 0,  # on CUDA, run this many highest resolutions in fp16
        conv_clamp: float | None = None,  # clamp conv outputs to +-N on CUDA; None = never
        mbstd_group_size: int = 4,  # images per minibatch-std group (capped at the batch)
        mbstd_num_channels: int = 1,  # minibatch-std feature maps; 0 = none
        cmap_mapping_layers: int = 8,  # depth of the label mapping (the official D keeps 8)
        channels_last: bool | None = None,  # channels-last layout; None = automatic (layers.py)
    ) -> None:
        super().__init__()
        log2 = int(math.log2(img_resolution))
        if img_resolution != 2**log2 or img_resolution < 8:
            raise ValueError(f"img_resolution must be a power of two >= 8, got {img_resolution}")
        if architecture not in ARCHITECTURES:
            raise ValueError(f"unknown discriminator architecture {architecture!r}")
        self.c_dim = c_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.block_resolutions = [2**i for i in range(log2, 2, -1)]
        fp16_resolution = max(2 ** (log2 + 1 - num_fp16_res), 8)
        cmap_dim = block_channels(4, channel_base, channel_max) if c_dim else 0
        for res in self.block_resolutions:
            channels = block_channels(res, channel_base, channel_max)
            block = DiscriminatorBlock(
                in_channels=channels if res < img_resolution else 0,
                tmp_channels=channels,
                out_channels=block_channels(res // 2, channel_base, channel_max),
                resolution=res,
                img_channels=img_channels,
                architecture=architecture,
                conv_clamp=conv_clamp,
                use_fp16=res >= fp16_resolution,
                channels_last=channels_last,
            )
            setattr(self, f"b{res}", block)
        if c_dim:
            self.mapping = MappingNetwork(
                z_dim=0,
                c_dim=c_dim,
                w_dim=cmap_dim,
                num_ws=None,
                num_layers=cmap_mapping_layers,
                w_avg_beta=None,
            )
        self.b4 = DiscriminatorEpilogue(
            in_channels=block_channels(4, channel_base, channel_max),
            cmap_dim=cmap_dim,
            resolution=4,
            img_channels=img_channels,
            architecture=architecture,
            mbstd_group_size=mbstd_group_size,
            mbstd_num_channels=mbstd_num_channels,
            conv_clamp=conv_clamp,
        )

    def blocks(self) -> list[DiscriminatorBlock]:
        return [getattr(self, f"b{res}") for res in self.block_resolutions]

    def forward(self, img: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        """Images [N, C, R, R] (and labels [N, c_dim]) -> logits [N, 1]; real is positive."""
        expected = (self.img_channels, self.img_resolution, self.img_resolution)
        if img.ndim != 4 or img.shape[1:] != expected:
            shape = ", ".join(map(str, expected))
            raise ValueError(f"expected images of shape [N, {shape}], got {tuple(img.shape)}")
        x = None
        for block in self.blocks():
            x, img = block(x, img)
        cmap = self.mapping(None, c) if self.c_dim else None
        return self.b4(x, img, cmap)


def build_discriminator(cfg: Config, c_dim: int = 0) -> Discriminator:
    """The discriminator that cfg describes; c_dim comes from the dataset's labels."""
    net = cfg.network
    fp32 = cfg.train.precision == "fp32"
    return Discriminator(
        c_dim=c_dim,
        img_resolution=cfg.data.resolution,
        img_channels=cfg.data.channels,
        architecture=net.d_architecture,
        channel_base=net.channel_base,
        channel_max=net.channel_max,
        num_fp16_res=0 if fp32 else net.num_fp16_res,
        conv_clamp=None if fp32 or not net.conv_clamp else net.conv_clamp,
        mbstd_group_size=net.mbstd_group,
        mbstd_num_channels=net.mbstd_channels,
    )
