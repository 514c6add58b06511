"""StyleGAN2-ADA losses: non-saturating logistic loss, lazy R1 on reals, lazy path length.

Each phase hands its loss to the caller's `backward` (already multiplied by its
lazy-regularisation interval, so that a penalty applied every N minibatches weighs as if
applied every time) and returns the statistics worth logging, kept as tensors so nothing
waits for the device inside the loop. A phase may hand over its loss in parts, so that only
one part's graph is in memory at a time.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional

from heroforge.config import TrainConfig
from heroforge.nets.discriminator import Discriminator
from heroforge.nets.generator import Generator
from heroforge.nets.ops import no_weight_gradients

Backward = Callable[[torch.Tensor], None]  # backpropagates one scalar loss
Stats = dict[str, torch.Tensor]  # detached scalars or vectors for the tick statistics


class StyleGAN2Loss(nn.Module):
    """Holds the networks' forward passes as used in training and the path-length mean."""

    pl_mean: torch.Tensor  # a buffer (registered in __init__)

    def __init__(
        self,
        G: Generator,  # generator being trained  # noqa: N803
        D: Discriminator,  # discriminator being trained  # noqa: N803
        augment: nn.Module | None,  # ADA pipe applied to everything D sees; None = off
        cfg: TrainConfig,  # losses' weights, intervals and style-mixing probability
        compile: bool = False,  # torch.compile the main phases' synthesis and D
    ) -> None:
        super().__init__()
        self.G, self.D, self.augment, self.cfg = G, D, augment, cfg
        # The main phases may run compiled forms (same parameters). The regularisers take
        # gradients of gradients, which compiled graphs do not support, so they stay eager.
        # A tuple, so that nn.Module does not register the compiled forms as submodules.
        self.main_nets: tuple[Callable, Callable] = (
            (torch.compile(G.synthesis), torch.compile(D)) if compile else (G.synthesis, D)
        )
        # running mean of path lengths, saved with the checkpoint so a resume is exact
        self.register_buffer("pl_mean", torch.zeros([]))
        # The running means (pl_mean, G's w_avg) move once per step, by the mean over the whole
        # global minibatch, so that splitting a minibatch over processes changes nothing.
        self.sums: dict[str, torch.Tensor] = {}

    def generate(
        self, z: torch.Tensor, c: torch.Tensor | None, main: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Images and their ws; with probability style_mixing, the ws from a random layer on
        come from a second latent (one coin and one cut-off per batch, as in the paper).
        main: a main phase's forward (compiled when train.compile), not a regulariser's."""
        ws = self.G.mapping(z, c)
        self._add("w", ws[:, 0].detach())
        if self.cfg.style_mixing > 0:
            cutoff = int(torch.randint(1, ws.shape[1], []).item())
            if torch.rand([]).item() < self.cfg.style_mixing:
                ws = ws.clone()
                ws[:, cutoff:] = self.G.mapping(torch.randn_like(z), c)[:, cutoff:]
        synthesis = self.main_nets[0] if main else self.G.synthesis
        return synthesis(ws), ws

    def _add(self, key: str, rows: torch.Tensor) -> None:
        """Sum rows (and count them, in the last column) towards a per-step running mean."""
        # new_full fills on the device; new_tensor would copy from the host and wait
        total = torch.cat([rows.sum(0), rows.new_full((1,), rows.shape[0])])
        self.sums[key] = self.sums[key] + total if key in self.sums else total

    @torch.no_grad()
    def update_means(self, reduce: Callable[[torch.Tensor], torch.Tensor]) -> None:
        """Fold this step's sums (over all processes, via reduce) into w_avg and pl_mean."""
        for key, total in self.sums.items():
            total = reduce(total.clone())
            mean = total[:-1] / total[-1]
            if key == "w":
                w_avg, beta = self.G.mapping.w_avg, self.G.mapping.w_avg_beta
                assert beta is not None  # every config builds G with a running mean of w
                w_avg.copy_(mean.lerp(w_avg, beta))
            else:
                self.pl_mean.copy_(self.pl_mean.lerp(mean[0], self.cfg.pl_decay))
        self.sums = {}

    def logits(self, img: torch.Tensor, c: torch.Tensor | None, main: bool = True) -> torch.Tensor:
        if self.augment is not None:
            img = self.augment(img)
        return (self.main_nets[1] if main else self.D)(img, c)

    def g_main(self, z: torch.Tensor, c: torch.Tensor | None, backward: Backward) -> Stats:
        img, _ = self.generate(z, c)
        fake = self.logits(img, c)
        loss = functional.softplus(-fake).mean()
        backward(loss)
        return {"loss/G": loss.detach(), "scores/fake": fake.detach().mean()}

    def g_pl(self, z: torch.Tensor, c: torch.Tensor | None, backward: Backward) -> Stats:
        """Path-length regularisation: the image change per unit step in w should be steady."""
        n = max(1, z.shape[0] // self.cfg.pl_batch_shrink)
        img, ws = self.generate(z[:n], None if c is None else c[:n], main=False)
        noise = torch.randn_like(img) / math.sqrt(img.shape[2] * img.shape[3])
        with no_weight_gradients():  # only ws's gradient is wanted here (ops.py)
            (grad,) = torch.autograd.grad((img * noise).sum(), ws, create_graph=True)
        lengths = grad.square().sum(2).mean(1).sqrt()
        self._add("pl", lengths.detach()[:, None])
        penalty = (lengths - self.pl_mean).square().mean()
        # the "+ 0 * img" gives every synthesis parameter a gradient, so that every process
        # all-reduces a flat buffer of the same size (dist.all_reduce_grads)
        loss = (penalty * self.cfg.pl_weight + img[:, 0, 0, 0].mean() * 0) * self.cfg.pl_interval
        backward(loss)
        return {"loss/pl": penalty.detach(), "pl_mean": self.pl_mean.clone()}

    def d_main(
        self, real: torch.Tensor, z: torch.Tensor, c: torch.Tensor | None, backward: Backward
    ) -> Stats:
        with torch.no_grad():
            img, _ = self.generate(z, c)
        fake = self.logits(img, c)
        loss_fake = functional.softplus(fake).mean()
        # Fakes' part first, then reals': one graph of D in memory at a time. The gradients
        # sum to those of the total loss (nothing random happens in a backward pass).
        backward(loss_fake)
        real_logits = self.logits(real, c)
        loss_real = functional.softplus(-real_logits).mean()
        backward(loss_real)
        return {
            "loss/D": (loss_fake + loss_real).detach(),
            # D's loss on fakes near 0 is the instability the stability verdict looks for
            "loss/D_fake": loss_fake.detach(),
            "scores/real": real_logits.detach().mean(),
            "real_signs": real_logits.detach().sign().flatten(),
        }

    def d_r1(self, real: torch.Tensor, c: torch.Tensor | None, backward: Backward) -> Stats:
        """R1: penalise D's gradient on real images (keeps D from overshooting the data)."""
        real = real.detach().requires_grad_(True)
        logits = self.logits(real, c, main=False)
        (grad,) = torch.autograd.grad(logits.sum(), real, create_graph=True)
        penalty = grad.square().sum([1, 2, 3]).mean()
        loss = (penalty * (self.cfg.r1_gamma / 2) + logits.mean() * 0) * self.cfg.r1_interval
        backward(loss)
        return {"loss/r1": penalty.detach()}
