"""The discriminator on tiny real models: shapes, gradients, minibatch std, conditioning."""

import pytest
import torch

from helpers.networks import tiny_net_config
from heroforge.nets import layers
from heroforge.nets.discriminator import build_discriminator
from heroforge.nets.layers import Conv2dLayer, MinibatchStdLayer


@pytest.mark.parametrize("resolution", [32, 64, 128, 256, 512, 1024])
def test_forward_and_backward_at_every_resolution(resolution):
    torch.manual_seed(0)
    disc = build_discriminator(tiny_net_config(resolution))
    img = torch.randn(4, 3, resolution, resolution, requires_grad=True)
    logits = disc(img)
    assert logits.shape == (4, 1)
    assert torch.isfinite(logits).all()
    logits.sum().backward()
    assert img.grad.abs().sum() > 0
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in disc.parameters())


@pytest.mark.parametrize("architecture", ["orig", "skip", "resnet"])
def test_every_architecture_runs_and_reads_the_image_where_it_should(architecture):
    disc = build_discriminator(tiny_net_config(32, f"network.d_architecture={architecture}"))
    reads_rgb = [
        name for name, _ in disc.named_children() if hasattr(getattr(disc, name), "fromrgb")
    ]
    assert reads_rgb == (["b32", "b16", "b8", "b4"] if architecture == "skip" else ["b32"])
    assert hasattr(disc.b32, "skip") == (architecture == "resnet")
    disc(torch.randn(2, 3, 32, 32)).mean().backward()


def test_r1_penalty_backpropagates_through_the_input_gradient():
    disc = build_discriminator(tiny_net_config(32))
    real = torch.randn(4, 3, 32, 32, requires_grad=True)
    (grad,) = torch.autograd.grad(disc(real).sum(), real, create_graph=True)
    grad.square().sum().backward()
    assert disc.b32.conv0.weight.grad.abs().sum() > 0


def test_minibatch_std_groups_image_i_with_images_i_plus_k_times_n_over_g():
    layer = MinibatchStdLayer(group_size=2, num_channels=1)
    x = torch.randn(4, 6, 3, 3)
    x[2] = x[0]  # with N=4, G=2 the groups are {0, 2} and {1, 3}
    y = layer(x)
    assert y.shape == (4, 7, 3, 3)
    assert torch.equal(y[:, :6], x)
    torch.testing.assert_close(y[0, 6], torch.full((3, 3), 1e-4))  # sqrt(0 + 1e-8)
    torch.testing.assert_close(y[0, 6], y[2, 6])
    expected = x[[1, 3]].std(dim=0, unbiased=False).mean()  # group {1, 3}: population std
    torch.testing.assert_close(y[1, 6], torch.full((3, 3), expected.item()), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(y[1, 6], y[3, 6])


def test_minibatch_std_caps_the_group_at_the_batch_and_splits_channels():
    x = torch.randn(2, 4, 2, 2)
    torch.testing.assert_close(MinibatchStdLayer(4)(x), MinibatchStdLayer(2)(x))
    y = MinibatchStdLayer(2, num_channels=2)(x)
    expected = x.std(dim=0, unbiased=False).reshape(2, 2, 2, 2).mean(dim=[1, 2, 3])
    torch.testing.assert_close(y[0, 4:, 0, 0], expected, atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError, match="multiple of the group"):
        MinibatchStdLayer(4)(torch.randn(6, 4, 2, 2))


def test_minibatch_std_size_comes_from_the_config():
    disc = build_discriminator(
        tiny_net_config(32, "network.mbstd_group=2", "network.mbstd_channels=2")
    )
    assert (disc.b4.mbstd.group_size, disc.b4.mbstd.num_channels) == (2, 2)
    assert disc.b4.conv.weight.shape[1] == 16 + 2
    assert build_discriminator(tiny_net_config(32, "network.mbstd_channels=0")).b4.mbstd is None


def test_conditioning_projects_onto_the_mapped_label():
    torch.manual_seed(1)
    disc = build_discriminator(tiny_net_config(32), c_dim=5)
    assert disc.mapping.num_layers == 8
    assert disc.b4.out.weight.shape[0] == 16  # cmap_dim = 16
    img = torch.randn(2, 3, 32, 32)
    c = torch.eye(5)[:2]
    a, b = disc(img, c), disc(img, c.flip(0))
    assert a.shape == (2, 1)
    assert not torch.allclose(a, b)
    with pytest.raises(ValueError, match="labels"):
        disc(img)


def test_wrong_image_shape_is_refused():
    disc = build_discriminator(tiny_net_config(32))
    with pytest.raises(ValueError, match=r"images of shape \[N, 3, 32, 32\]"):
        disc(torch.randn(2, 3, 64, 64))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_trained_conv_scales_its_weights_first_in_reduced_precision(dtype, monkeypatch):
    """fp32: the weight gain moves past the convolution (less memory kept for backward). In
    fp16/bf16 blocks the weights are scaled first: unscaled ones would make the convolution's
    output sqrt(fan-in) times bigger. Both give the same layer output."""
    torch.manual_seed(0)
    layer = Conv2dLayer(8, 4, 3, activation="lrelu").requires_grad_(True)
    x = torch.randn(2, 8, 8, 8).to(dtype)
    gains = []
    real = layers.conv2d_resample

    def spy(*args, **kwargs):
        gains.append(kwargs.get("weight_gain", 1.0))
        return real(*args, **kwargs)

    monkeypatch.setattr(layers, "conv2d_resample", spy)
    trained = layer(x)
    with torch.no_grad():
        frozen = layer(x)
    assert gains[1] == layer.weight_gain * 2**0.5  # no gradient: always scaled first
    assert (gains[0] == 1.0) == (dtype == torch.float32)
    tolerance = 1e-5 if dtype == torch.float32 else 2e-2
    assert torch.allclose(trained.float(), frozen.float(), atol=tolerance, rtol=tolerance)
