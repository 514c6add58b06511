"""Adaptive discriminator augmentation (StyleGAN2-ADA): the augment pipe and its p controller."""

from heroforge.augment.ada import AdaController, distributed_sum
from heroforge.augment.pipe import PIPES, AugmentPipe

__all__ = ["PIPES", "AdaController", "AugmentPipe", "distributed_sum"]
