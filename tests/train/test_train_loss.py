"""The losses' phases: what they backpropagate, and in how many parts."""

import math

import pytest
import torch
from torch.nn import functional
from torch.utils._python_dispatch import TorchDispatchMode

from helpers.training import EVERY_PHASE
from heroforge.augment import AugmentPipe
from heroforge.config import load_config
from heroforge.nets.discriminator import build_discriminator
from heroforge.nets.generator import build_generator
from heroforge.nets.layers import set_half_dtype
from heroforge.train.loss import StyleGAN2Loss
from heroforge.train.precision import resolve_precision


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


class _ConvBackwards(TorchDispatchMode):
    """Records, for every convolution backward run inside, whether it computed the weight's
    gradient (the second entry of its output mask)."""

    def __init__(self) -> None:
        super().__init__()
        self.weight_grads: list[bool] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func.overloadpacket is torch.ops.aten.convolution_backward:
            self.weight_grads.append(bool(args[-1][1]))
        return func(*args, **kwargs)


def _pl_setup(precision: str) -> tuple[StyleGAN2Loss, torch.nn.Module, torch.Tensor]:
    cfg = load_config("tiny-cpu", [*EVERY_PHASE, f"train.precision={precision}"])
    torch.manual_seed(0)
    G, D = build_generator(cfg, modconv="split"), build_discriminator(cfg)  # noqa: N806
    set_half_dtype(G, resolve_precision(precision, torch.device("cpu")).half)
    G.requires_grad_(True)
    return StyleGAN2Loss(G, D, None, cfg.train), G, torch.randn(8, cfg.network.z_dim)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_path_length_inner_gradient_computes_no_weight_gradients(monkeypatch, precision):
    # The inner gradient is taken with respect to ws only; the official code turns weight
    # gradients off there. Every convolution backward of that gradient must skip the weight's.
    loss, _, z = _pl_setup(precision)
    recorders: list[_ConvBackwards] = []
    real_grad = torch.autograd.grad

    def recorded_grad(*args, **kwargs):
        recorder = _ConvBackwards()
        recorders.append(recorder)
        with recorder:
            return real_grad(*args, **kwargs)

    monkeypatch.setattr(torch.autograd, "grad", recorded_grad)
    loss.g_pl(z, None, lambda part: part.backward())
    (inner,) = recorders
    assert len(inner.weight_grads) >= 8  # every modulated conv of G (split form) ran one
    assert not any(inner.weight_grads)


def test_path_length_weights_get_the_same_gradients_without_the_inner_weight_gradients():
    # The penalty reaches the weights through the input gradients, which depend on them: the
    # skipped weight gradients were computed for nothing.
    loss, G, z = _pl_setup("fp32")  # noqa: N806
    torch.manual_seed(1)
    loss.g_pl(z, None, lambda part: part.backward())
    skipped = {name: p.grad.clone() for name, p in G.named_parameters() if p.grad is not None}
    G.zero_grad(set_to_none=True)
    loss.pl_mean.zero_()

    torch.manual_seed(1)  # the same style mixing and noise draws: g_pl's steps, all computed
    n = z.shape[0] // loss.cfg.pl_batch_shrink
    img, ws = loss.generate(z[:n], None, main=False)
    noise = torch.randn_like(img) / math.sqrt(img.shape[2] * img.shape[3])
    (grad,) = torch.autograd.grad((img * noise).sum(), ws, create_graph=True)
    lengths = grad.square().sum(2).mean(1).sqrt()
    penalty = (lengths - loss.pl_mean).square().mean()
    (penalty * loss.cfg.pl_weight * loss.cfg.pl_interval + img[:, 0, 0, 0].mean() * 0).backward()

    weights = [name for name in skipped if name.endswith(".weight") and "affine" not in name]
    assert len(weights) >= 8  # the modulated convolutions' weights are among them
    for name, p in G.named_parameters():
        if p.grad is not None:
            torch.testing.assert_close(skipped[name], p.grad, rtol=1e-4, atol=1e-7)
