"""The StyleGAN2 generator: mapping network + synthesis network, built from a heroforge Config."""

from __future__ import annotations

import torch
from torch import nn

from heroforge.config import Config
from heroforge.nets.mapping import MappingNetwork
from heroforge.nets.modconv import ModConvForm
from heroforge.nets.synthesis import NoiseMode, SynthesisNetwork


class Generator(nn.Module):
    def __init__(
        self,
        z_dim: int,  # input latent size
        c_dim: int,  # conditioning label size; 0 = unconditional
        w_dim: int,  # intermediate latent (style) size
        img_resolution: int,  # output resolution
        img_channels: int,  # output channels
        mapping_layers: int = 8,  # depth of the mapping network
        mapping_lr_mult: float = 0.01,  # learning-rate multiplier of the mapping network
        channel_base: int = 32768,  # feature maps at r: min(channel_base // r, channel_max)
        channel_max: int = 512,  # cap on feature maps
        num_fp16_res: int = 0,  # on CUDA, run this many highest resolutions in fp16
        conv_clamp: float | None = None,  # clamp conv outputs to +-N on CUDA; None = never
        architecture: str = "skip",  # how toRGB outputs combine: "orig", "skip" or "resnet"
        channels_last: bool | None = None,  # channels-last layout; None = automatic (layers.py)
        modconv: ModConvForm = "auto",  # modulated-conv form: "grouped", "split" or timed "auto"
    ) -> None:
        super().__init__()
        self.z_dim = z_dim
        self.c_dim = c_dim
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.synthesis = SynthesisNetwork(
            w_dim=w_dim,
            img_resolution=img_resolution,
            img_channels=img_channels,
            channel_base=channel_base,
            channel_max=channel_max,
            num_fp16_res=num_fp16_res,
            conv_clamp=conv_clamp,
            architecture=architecture,
            channels_last=channels_last,
            modconv=modconv,
        )
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(
            z_dim=z_dim,
            c_dim=c_dim,
            w_dim=w_dim,
            num_ws=self.num_ws,
            num_layers=mapping_layers,
            lr_multiplier=mapping_lr_mult,
        )

    def forward(
        self,
        z: torch.Tensor,
        c: torch.Tensor | None = None,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        noise_mode: NoiseMode = "random",
        update_w_avg: bool = False,
    ) -> torch.Tensor:
        """z [N, z_dim] (and labels c [N, c_dim]) -> images [N, img_channels, R, R]."""
        ws = self.mapping(z, c, truncation_psi, truncation_cutoff, update_w_avg=update_w_avg)
        return self.synthesis(ws, noise_mode=noise_mode)


def build_generator(cfg: Config, c_dim: int = 0, modconv: ModConvForm | None = None) -> Generator:
    """The generator that cfg describes; c_dim comes from the dataset's labels.

    modconv defaults to "auto" (time both forms), but to the fixed "split" form when
    cfg.train.deterministic, since two processes may time differently and so compute
    differently. precision "fp32" also turns off fp16 and conv_clamp, as the official --fp32 did.
    """
    net = cfg.network
    fp32 = cfg.train.precision == "fp32"
    return Generator(
        z_dim=net.z_dim,
        c_dim=c_dim,
        w_dim=net.w_dim,
        img_resolution=cfg.data.resolution,
        img_channels=cfg.data.channels,
        mapping_layers=net.mapping_layers,
        mapping_lr_mult=net.mapping_lr_mult,
        channel_base=net.channel_base,
        channel_max=net.channel_max,
        num_fp16_res=0 if fp32 else net.num_fp16_res,
        conv_clamp=None if fp32 or not net.conv_clamp else net.conv_clamp,
        architecture=net.g_architecture,
        modconv=modconv or ("split" if cfg.train.deterministic else "auto"),
    )
