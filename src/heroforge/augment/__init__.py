"""Adaptive discriminator augmentation (StyleGAN2-ADA): the augment pipe and its p controller."""

from heroforge.augment.ada import AdaController
from heroforge.augment.pipe import PIPES, AugmentPipe

__all__ = ["PIPES", "AdaController", "AugmentPipe"]
