"""heroforge: stylised characters in, a StyleGAN2-ADA model that invents new ones out."""

__version__ = "0.1.0"
