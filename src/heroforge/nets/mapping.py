"""The mapping network: latent z (and optional class label c) -> intermediate latent w."""

from __future__ import annotations

import torch
from torch import nn

from heroforge.nets.layers import FullyConnectedLayer, normalize_2nd_moment


class MappingNetwork(nn.Module):
    w_avg: torch.Tensor  # a buffer (only with w_avg_beta), declared for the type checker

    def __init__(
        self,
        z_dim: int,  # input latent size; 0 = none (the discriminator maps labels only)
        c_dim: int,  # conditioning label size; 0 = unconditional
        w_dim: int,  # output size
        num_ws: int
        | None,  # copies of w to output (one per synthesis layer); None = return [N, w_dim]
        num_layers: int = 8,  # fully connected layers
        lr_multiplier: float = 0.01,  # learning-rate multiplier of every layer
        w_avg_beta: float
        | None = 0.995,  # decay of the running mean of w (truncation); None = no mean
    ) -> None:
        super().__init__()
        self.z_dim = z_dim
        self.c_dim = c_dim
        self.w_dim = w_dim
        self.num_ws = num_ws
        self.num_layers = num_layers
        self.w_avg_beta = w_avg_beta
        embed_features = w_dim if c_dim else 0
        if c_dim:
            self.embed = FullyConnectedLayer(c_dim, embed_features)
        features = [z_dim + embed_features] + [w_dim] * num_layers
        for idx in range(num_layers):
            layer = FullyConnectedLayer(
                features[idx],
                features[idx + 1],
                activation="lrelu",
                lr_multiplier=lr_multiplier,
            )
            setattr(self, f"fc{idx}", layer)
        if w_avg_beta is not None:
            self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(
        self,
        z: torch.Tensor | None,
        c: torch.Tensor | None = None,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        update_w_avg: bool = False,
    ) -> torch.Tensor:
        """w of shape [N, num_ws, w_dim] (or [N, w_dim] when num_ws is None).

        update_w_avg: fold this batch into the running mean of w; the training loop sets it on
        the generator's own passes (not on the second latent of style mixing).
        truncation_psi < 1 pulls w towards that mean, on the first truncation_cutoff ws only
        when given (coarse layers), trading variety for typicality.
        """
        parts = []
        if self.z_dim:
            if z is None or z.shape[1:] != (self.z_dim,):
                got = None if z is None else tuple(z.shape)
                raise ValueError(f"expected latents of shape [N, {self.z_dim}], got {got}")
            parts.append(normalize_2nd_moment(z.to(torch.float32)))
        if self.c_dim:
            if c is None or c.shape[1:] != (self.c_dim,):
                got = None if c is None else tuple(c.shape)
                raise ValueError(f"expected labels of shape [N, {self.c_dim}], got {got}")
            parts.append(normalize_2nd_moment(self.embed(c.to(torch.float32))))
        x = torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]
        for idx in range(self.num_layers):
            x = getattr(self, f"fc{idx}")(x)

        if update_w_avg:
            if self.w_avg_beta is None:
                raise ValueError("update_w_avg needs a running mean of w; w_avg_beta is None")
            with torch.no_grad():
                self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        if self.num_ws is None:
            return x
        x = x.unsqueeze(1).repeat(1, self.num_ws, 1)
        if truncation_psi != 1:
            cutoff = self.num_ws if truncation_cutoff is None else truncation_cutoff
            x[:, :cutoff] = self.w_avg.lerp(x[:, :cutoff], truncation_psi)
        return x

    def extra_repr(self) -> str:
        return f"z_dim={self.z_dim}, c_dim={self.c_dim}, w_dim={self.w_dim}, num_ws={self.num_ws}"
