"""The losses' phases: what they backpropagate, and in how many parts."""

import torch
from torch.nn import functional

from helpers.training import EVERY_PHASE
from heroforge.augment import AugmentPipe
from heroforge.config import load_config
from heroforge.nets.discriminator import build_discriminator
from heroforge.nets.generator import build_generator
from heroforge.train.loss import StyleGAN2Loss


def test_d_main_in_two_parts_gives_the_gradient_of_the_whole_loss():
    # d_main backpropagates the fakes' part before D sees the reals (one graph of D in memory
    # at a time); D's gradient must be that of the whole logistic loss, augmentation included.
    cfg = load_config("tiny-cpu", EVERY_PHASE)
    torch.manual_seed(0)
    G, D = build_generator(cfg), build_discriminator(cfg)  # noqa: N806
    augment = AugmentPipe.from_config(cfg.augment)
    augment.set_p(0.5)
    loss = StyleGAN2Loss(G, D, augment, cfg.train)
    G.requires_grad_(False)
    real = torch.rand(8, 3, cfg.data.resolution, cfg.data.resolution) * 2 - 1
    z = torch.randn(8, cfg.network.z_dim)

    parts = []
    torch.manual_seed(1)
    stats = loss.d_main(real, z, None, lambda part: (parts.append(part), part.backward()))
    in_parts = [p.grad.clone() for p in D.parameters()]
    D.zero_grad(set_to_none=True)

    torch.manual_seed(1)  # the same style-mixing and augmentation draws, in the same order
    with torch.no_grad():
        img, _ = loss.generate(z, None)
    whole = functional.softplus(loss.logits(img, None)).mean()
    whole = whole + functional.softplus(-loss.logits(real, None)).mean()
    whole.backward()

    assert len(parts) == 2
    torch.testing.assert_close(stats["loss/D"], whole.detach())
    for got, want in zip(in_parts, (p.grad for p in D.parameters()), strict=True):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-7)
