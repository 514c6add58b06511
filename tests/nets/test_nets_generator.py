"""The generator on tiny real models: shapes, gradients, noise, truncation, mixing, labels."""

import pytest
import torch

from helpers.networks import tiny_net_config
from heroforge.nets.generator import build_generator
from heroforge.nets.layers import set_half_dtype


def tiny_cfg(resolution=32, *extra):
    """Latents of 16 too: the tests draw their z as randn(n, 16)."""
    return tiny_net_config(resolution, "network.z_dim=16", "network.w_dim=16", *extra)


@pytest.mark.parametrize("resolution", [32, 64, 128, 256, 512, 1024])
def test_forward_and_backward_at_every_resolution(resolution):
    torch.manual_seed(0)
    gen = build_generator(tiny_cfg(resolution))
    img = gen(torch.randn(2, 16))
    assert img.shape == (2, 3, resolution, resolution)
    assert img.dtype == torch.float32
    assert torch.isfinite(img).all()
    img.square().mean().backward()
    grads = {n: p.grad for n, p in gen.named_parameters()}
    assert all(g is not None and torch.isfinite(g).all() for g in grads.values())
    assert grads["mapping.fc0.weight"].abs().sum() > 0
    assert grads[f"synthesis.b{resolution}.torgb.weight"].abs().sum() > 0


@pytest.mark.parametrize("modconv", ["grouped", "split"])
def test_path_length_regularisation_can_backpropagate_through_the_ws_gradient(modconv):
    gen = build_generator(tiny_cfg(32), modconv=modconv)
    ws = gen.mapping(torch.randn(2, 16))
    img = gen.synthesis(ws)
    (grad,) = torch.autograd.grad((img * torch.randn_like(img)).sum(), ws, create_graph=True)
    grad.square().sum().backward()
    assert gen.synthesis.b32.conv1.weight.grad.abs().sum() > 0
    assert gen.mapping.fc0.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("architecture", ["orig", "skip", "resnet"])
@pytest.mark.parametrize("modconv", ["grouped", "split", "auto"])
def test_every_architecture_and_form_runs(architecture, modconv):
    gen = build_generator(tiny_cfg(32, f"network.g_architecture={architecture}"), modconv=modconv)
    assert gen.num_ws == 8  # b4: 1 conv, b8..b32: 2 each, plus the last toRGB
    gen(torch.randn(2, 16)).mean().backward()


def test_forms_agree_on_the_same_weights():
    torch.manual_seed(1)
    gen = build_generator(tiny_cfg(32), modconv="split")
    z = torch.randn(3, 16)
    split = gen(z, noise_mode="const")
    for module in gen.modules():
        if hasattr(module, "modconv"):
            module.modconv = "grouped"
    torch.testing.assert_close(gen(z, noise_mode="const"), split, atol=1e-5, rtol=1e-5)


def test_noise_modes():
    torch.manual_seed(2)
    gen = build_generator(tiny_cfg(32))
    for module in gen.modules():
        if hasattr(module, "noise_strength"):
            module.noise_strength.data.fill_(0.5)  # noise starts switched off (strength 0)
    z = torch.randn(2, 16)
    with torch.no_grad():
        const = [gen(z, noise_mode="const") for _ in range(2)]
        random = [gen(z, noise_mode="random") for _ in range(2)]
        none = gen(z, noise_mode="none")
    assert torch.equal(const[0], const[1])
    assert not torch.equal(random[0], random[1])
    assert not torch.equal(none, const[0])
    with pytest.raises(ValueError, match="noise_mode"):
        gen(z, noise_mode="loud")


def test_truncation_psi_zero_gives_the_image_of_w_avg():
    torch.manual_seed(3)
    gen = build_generator(tiny_cfg(32))
    gen.mapping(torch.randn(64, 16), update_w_avg=True)
    w_avg = gen.mapping.w_avg.clone()
    assert w_avg.abs().sum() > 0
    ws = gen.mapping(torch.randn(4, 16), truncation_psi=0)
    torch.testing.assert_close(ws, w_avg.expand(4, gen.num_ws, -1))
    with torch.no_grad():
        img = gen(torch.randn(4, 16), truncation_psi=0, noise_mode="const")
        ref = gen.synthesis(w_avg.expand(1, gen.num_ws, -1), noise_mode="const")
    torch.testing.assert_close(img, ref.expand(4, -1, -1, -1))
    ws = gen.mapping(torch.randn(4, 16), truncation_psi=0.5, truncation_cutoff=3)
    torch.testing.assert_close(ws[:, :3], w_avg.lerp(ws[:, 3:4], 0.5).expand(-1, 3, -1))


def test_w_avg_moves_only_when_asked_by_beta():
    gen = build_generator(tiny_cfg(32))
    z = torch.randn(8, 16)
    gen.mapping(z)
    assert gen.mapping.w_avg.abs().sum() == 0
    w = gen.mapping(z, update_w_avg=True)[:, 0]
    torch.testing.assert_close(gen.mapping.w_avg, w.mean(0) * (1 - 0.995))


def test_style_mixing_each_w_changes_the_output():
    torch.manual_seed(4)
    gen = build_generator(tiny_cfg(32))
    with torch.no_grad():
        ws = gen.mapping(torch.randn(1, 16))
        other = gen.mapping(torch.randn(1, 16))
        base = gen.synthesis(ws, noise_mode="const")
        for idx in range(gen.num_ws):
            mixed = ws.clone()
            mixed[:, idx] = other[:, idx]
            assert not torch.allclose(gen.synthesis(mixed, noise_mode="const"), base), idx
    with pytest.raises(ValueError, match="ws of shape"):
        gen.synthesis(ws[:, :-1])


def test_conditioning_changes_the_output_and_checks_the_labels():
    torch.manual_seed(5)
    gen = build_generator(tiny_cfg(32), c_dim=4)
    assert gen.mapping.fc0.weight.shape[1] == 16 + 16  # z next to the embedded label
    z = torch.randn(2, 16)
    c = torch.eye(4)[:2]
    with torch.no_grad():
        a = gen(z, c, noise_mode="const")
        b = gen(z, c.flip(0), noise_mode="const")
    assert not torch.allclose(a, b)
    with pytest.raises(ValueError, match="labels"):
        gen(z)


def test_fp32_precision_turns_off_fp16_and_the_clamp():
    gen = build_generator(tiny_cfg(32, "network.num_fp16_res=2", "train.precision=fp32"))
    assert not any(b.use_fp16 for b in gen.synthesis.blocks())
    assert gen.synthesis.b32.conv1.conv_clamp is None
    gen = build_generator(tiny_cfg(32, "network.num_fp16_res=2"))
    assert [b.use_fp16 for b in gen.synthesis.blocks()] == [False, False, True, True]
    assert gen.synthesis.b32.conv1.conv_clamp == 256
    img = gen(torch.randn(2, 16))  # on the CPU every block still runs in fp32, unclamped
    assert img.dtype == torch.float32


def test_memory_layouts_give_the_same_images():
    torch.manual_seed(6)
    gen = build_generator(tiny_cfg(32), modconv="split")
    z = torch.randn(2, 16)
    images = []
    for layout in (None, True, False):  # None = automatic: channels-last on the CPU
        for block in gen.synthesis.blocks():
            block.channels_last = layout
        with torch.no_grad():
            images.append(gen(z, noise_mode="const"))
    torch.testing.assert_close(images[0], images[1])
    torch.testing.assert_close(images[2], images[1], atol=1e-5, rtol=1e-5)


def test_the_automatic_layout_on_the_cpu_is_nchw_only_for_blocks_being_trained():
    # a block whose weights train runs NCHW, where oneDNN's weight gradients are fast; every
    # other pass (generating, a frozen net inside the other's phase) runs channels-last,
    # oneDNN's faster layout for forward passes and input gradients
    gen = build_generator(tiny_cfg(32), modconv="split")
    layouts = []
    conv = gen.synthesis.b32.conv1
    conv.register_forward_pre_hook(lambda _m, args: layouts.append(args[0].is_contiguous()))
    gen(torch.randn(2, 16))  # training G
    with torch.no_grad():
        gen(torch.randn(2, 16))  # generating
    gen.requires_grad_(False)
    gen(torch.randn(2, 16, requires_grad=True))  # frozen, but a gradient flows through
    gen.synthesis.b32.requires_grad_(True)
    gen(torch.randn(2, 16))  # only this block trains
    assert layouts == [True, False, False, True]


def test_in_bf16_the_automatic_layout_on_the_cpu_is_channels_last_also_for_trained_blocks():
    # oneDNN's bf16 weight gradients lose nothing in channels-last (conv_kernels.py --dtype
    # bf16), unlike fp32's: the block that trains stays in oneDNN's native layout
    gen = build_generator(tiny_cfg(32, "network.num_fp16_res=2"), modconv="split")
    set_half_dtype(gen, torch.bfloat16)
    layouts = {}
    for block in gen.synthesis.blocks():
        block.conv1.register_forward_pre_hook(
            lambda _m, args, res=block.resolution: layouts.__setitem__(
                res, (args[0].dtype, args[0].is_contiguous(memory_format=torch.channels_last))
            )
        )
    gen(torch.randn(2, 16)).mean().backward()  # training G
    assert layouts[32] == layouts[16] == (torch.bfloat16, True)
    assert layouts[8] == (torch.float32, False)  # fp32 blocks that train stay NCHW
    assert gen.synthesis.b32.conv1.weight.grad is not None
