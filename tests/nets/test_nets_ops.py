"""Each op against a slow, obvious reference (explicit zero insertion, padding and tap sums)."""

import math

import pytest
import torch
import torch.nn.functional as nnf

from heroforge.nets.layers import Conv2dLayer
from heroforge.nets.modconv import ModConvPlanner, modulated_conv2d
from heroforge.nets.ops import (
    bias_act,
    conv2d_resample,
    downsample2d,
    setup_filter,
    upfirdn2d,
    upsample2d,
)

TOL = {"atol": 1e-5, "rtol": 1e-5}
F64 = torch.float64


def zero_insert(x, up):
    """Every pixel followed by up - 1 zeros along each axis."""
    n, c, h, w = x.shape
    out = x.new_zeros(n, c, h * up, w * up)
    out[:, :, ::up, ::up] = x
    return out


def pad(x, x0, x1, y0, y1):
    """Zero padding by hand; negative amounts crop."""
    n, c, h, w = x.shape
    out = x.new_zeros(n, c, h + max(y0, 0) + max(y1, 0), w + max(x0, 0) + max(x1, 0))
    out[:, :, max(y0, 0) : max(y0, 0) + h, max(x0, 0) : max(x0, 0) + w] = x
    return out[
        :, :, max(-y0, 0) : out.shape[2] - max(-y1, 0), max(-x0, 0) : out.shape[3] - max(-x1, 0)
    ]


def convolve_valid(x, k):
    """True 2D convolution over the 'valid' region, as a plain sum over the kernel taps."""
    kh, kw = k.shape[-2:]
    kf = k.flip([-2, -1])
    h, w = x.shape[2] - kh + 1, x.shape[3] - kw + 1
    out = 0
    for a in range(kh):
        for b in range(kw):
            out = out + torch.einsum("nihw,oi->nohw", x[:, :, a : a + h, b : b + w], kf[:, :, a, b])
    return out


def filter_channels(x, f):
    """True convolution of every channel with the 2D filter f ('valid')."""
    c = x.shape[1]
    k = torch.zeros(c, c, *f.shape, dtype=x.dtype)
    k[range(c), range(c)] = f.to(x.dtype)
    return convolve_valid(x, k)


def test_setup_filter_is_the_normalised_outer_product():
    f = setup_filter()
    expected = torch.tensor([1.0, 3, 3, 1])[:, None] * torch.tensor([1.0, 3, 3, 1])[None] / 64
    torch.testing.assert_close(f, expected)


@pytest.mark.parametrize(
    ("up", "down", "padding"),
    [
        (1, 1, (1, 2, 0, 3)),
        (2, 1, (2, 1, 2, 1)),
        (1, 2, (1, 1, 1, 1)),
        (3, 2, (-1, 2, 3, -2)),
        (2, 2, 1),
    ],
)
@pytest.mark.parametrize("flip_filter", [False, True])
def test_upfirdn2d_matches_zero_insert_pad_convolve_subsample(up, down, padding, flip_filter):
    torch.manual_seed(0)
    x = torch.randn(2, 3, 7, 6, dtype=F64)
    f = torch.rand(4, 3, dtype=F64)  # asymmetric on purpose so that a flip shows
    p = (padding,) * 4 if isinstance(padding, int) else padding
    ref = pad(zero_insert(x, up), *p)
    ref = filter_channels(ref, f.flip([0, 1]) if flip_filter else f)[:, :, ::down, ::down] * 2.5
    out = upfirdn2d(x, f, up=up, down=down, padding=padding, flip_filter=flip_filter, gain=2.5)
    torch.testing.assert_close(out, ref, **TOL)


def test_upsample2d_and_downsample2d_match_upfirdn2d_and_the_reference():
    torch.manual_seed(1)
    x = torch.randn(2, 5, 8, 8, dtype=F64)
    f = setup_filter().to(F64)
    up_ref = filter_channels(pad(zero_insert(x, 2), 2, 1, 2, 1), f * 4)
    torch.testing.assert_close(upsample2d(x, f), up_ref, **TOL)
    torch.testing.assert_close(upfirdn2d(x, f, up=2, padding=(2, 1, 2, 1), gain=4), up_ref, **TOL)
    down_ref = filter_channels(pad(x, 1, 1, 1, 1), f)[:, :, ::2, ::2]
    torch.testing.assert_close(downsample2d(x, f), down_ref, **TOL)
    torch.testing.assert_close(upfirdn2d(x, f, down=2, padding=1), down_ref, **TOL)
    assert upsample2d(x, f).shape[-2:] == (16, 16)
    assert downsample2d(x, f).shape[-2:] == (4, 4)


def test_upsampling_keeps_a_constant_image_constant_away_from_the_border():
    x = torch.ones(1, 1, 8, 8, dtype=F64)
    torch.testing.assert_close(
        upsample2d(x, setup_filter().to(F64))[:, :, 2:-2, 2:-2], torch.ones(1, 1, 12, 12, dtype=F64)
    )


@pytest.mark.parametrize("act", ["linear", "lrelu"])
@pytest.mark.parametrize("clamp", [None, 0.5])
def test_bias_act_matches_the_formula(act, clamp):
    torch.manual_seed(2)
    x = torch.randn(3, 4, 5, 5, dtype=F64)
    b = torch.randn(4, dtype=F64)
    y = x + b.reshape(1, -1, 1, 1)
    if act == "lrelu":
        y = torch.where(y >= 0, y, 0.2 * y)
    default_gain = math.sqrt(2) if act == "lrelu" else 1.0
    expected = y * default_gain if clamp is None else (y * default_gain).clamp(-clamp, clamp)
    torch.testing.assert_close(bias_act(x, b, act, clamp=clamp), expected, **TOL)
    torch.testing.assert_close(bias_act(x, b, act, gain=3.0), y * 3, **TOL)
    plain = torch.where(x >= 0, x, 0.2 * x) if act == "lrelu" else x
    torch.testing.assert_close(bias_act(x, None, act, gain=3.0), plain * 3, **TOL)


def test_bias_act_leaves_its_input_alone_and_backpropagates():
    x = torch.randn(2, 3, 4, 4, dtype=F64, requires_grad=True)
    b = torch.randn(3, dtype=F64, requires_grad=True)
    before = x.detach().clone()
    assert torch.autograd.gradcheck(lambda x, b: bias_act(x, b, "lrelu"), (x, b))
    assert torch.autograd.gradcheck(lambda x: bias_act(x, None, "lrelu"), (x,))
    # In place on a temporary of the caller's: autograd must still see the right graph.
    assert torch.autograd.gradcheck(
        lambda x, b: bias_act(x * 1, b, "lrelu", 1.0, fresh=True), (x, b)
    )
    assert torch.autograd.gradgradcheck(
        lambda x, b: bias_act(x * 1, b, "lrelu", fresh=True), (x, b)
    )
    torch.testing.assert_close(x.detach(), before)


def reference_conv(x, w, f, up, down):
    """Official semantics at full resolution: the upsampling conv is a true convolution of the
    zero-inserted, filtered image; plain and downsampling convs correlate, then subsample."""
    k, fw = w.shape[-1], f.shape[-1]
    if up == 2:
        p0, p1 = k // 2 + fw // 2, k // 2 + fw // 2 - 1
        return convolve_valid(filter_channels(pad(zero_insert(x, 2), p0, p1, p0, p1), f * 4), w)
    if down == 2:
        p = k // 2 + fw // 2 - 1
        x = filter_channels(pad(x, p, p, p, p), f)
        return convolve_valid(x, w.flip([-2, -1]))[:, :, ::2, ::2]
    return convolve_valid(pad(x, *(k // 2,) * 4), w.flip([-2, -1]))


@pytest.mark.parametrize(
    ("k", "up", "down"), [(3, 1, 1), (1, 1, 1), (3, 2, 1), (1, 2, 1), (3, 1, 2), (1, 1, 2)]
)
def test_conv2d_resample_matches_the_reference(k, up, down):
    torch.manual_seed(3)
    x = torch.randn(2, 3, 8, 8, dtype=F64)
    w = torch.randn(4, 3, k, k, dtype=F64)
    b = torch.randn(4, dtype=F64)
    f = setup_filter().to(F64)
    out = conv2d_resample(x, w, f, up=up, down=down, bias=b)
    ref = reference_conv(x, w, f, up, down) + b.reshape(1, -1, 1, 1)
    assert out.shape == ref.shape == (2, 4, 8 * up // down, 8 * up // down)
    torch.testing.assert_close(out, ref, **TOL)


def reference_modconv(x, weight, styles, demodulate, up, noise, gain):
    outs = []
    for n in range(x.shape[0]):
        w = weight * styles[n].reshape(1, -1, 1, 1)
        if demodulate:
            w = w / (w.square().sum(dim=[1, 2, 3], keepdim=True) + 1e-8).sqrt()
        outs.append(reference_conv(x[n : n + 1], w, setup_filter().to(F64), up, 1))
    out = torch.cat(outs)
    return gain * (out if noise is None else out + noise)


@pytest.mark.parametrize("form", ["grouped", "split"])
@pytest.mark.parametrize(
    ("k", "up", "demodulate", "with_noise"),
    [(3, 1, True, True), (3, 2, True, False), (1, 1, False, False), (3, 2, False, True)],
)
def test_modulated_conv2d_matches_the_per_image_reference(form, k, up, demodulate, with_noise):
    torch.manual_seed(4)
    x = torch.randn(3, 5, 6, 6, dtype=F64)
    weight = torch.randn(4, 5, k, k, dtype=F64)
    styles = torch.randn(3, 5, dtype=F64)
    noise = torch.randn(3, 1, 6 * up, 6 * up, dtype=F64) if with_noise else None
    f = setup_filter().to(F64)
    out = modulated_conv2d(
        x,
        weight,
        styles,
        demodulate=demodulate,
        up=up,
        resample_filter=f,
        noise=noise,
        gain=1.7,
        form=form,
    )
    ref = reference_modconv(x, weight, styles, demodulate, up, noise, 1.7)
    torch.testing.assert_close(out, ref, **TOL)


def test_demodulation_makes_the_output_independent_of_the_weight_scale():
    x, w, s = (
        torch.randn(2, 4, 5, 5, dtype=F64),
        torch.randn(3, 4, 3, 3, dtype=F64),
        torch.randn(2, 4, dtype=F64),
    )
    torch.testing.assert_close(
        modulated_conv2d(x, w, s), modulated_conv2d(x, 7 * w, 0.1 * s), **TOL
    )


def test_the_planner_times_each_case_once_and_keeps_the_real_graph_clean():
    planner = ModConvPlanner(repeats=1, min_seconds=0.0)
    x = torch.randn(2, 4, 8, 8, requires_grad=True)
    w, s = torch.randn(3, 4, 3, 3, requires_grad=True), torch.randn(2, 4)
    form = planner.choose(x, w, s, True, 1, None, None)
    assert form in ("grouped", "split")
    assert len(planner.choices) == 1
    assert x.grad is None
    assert w.grad is None
    assert planner.choose(x, w, s, True, 1, None, None) == form
    assert len(planner.choices) == 1
    with torch.no_grad():
        planner.choose(x, w, s, True, 1, None, None)
    assert len(planner.choices) == 2  # inference is timed separately: no backward to pay for


def test_auto_gives_the_same_numbers_as_the_explicit_forms():
    torch.manual_seed(5)
    x, w, s = torch.randn(2, 4, 8, 8), torch.randn(3, 4, 3, 3), torch.randn(2, 4)
    auto = modulated_conv2d(x, w, s, form="auto")
    torch.testing.assert_close(auto, modulated_conv2d(x, w, s, form="split"), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(
        auto, modulated_conv2d(x, w, s, form="grouped"), atol=1e-5, rtol=1e-5
    )


@pytest.mark.parametrize("form", ["grouped", "split"])
def test_fp16_inputs_are_prenormalised_and_match_fp32(form):
    # The fp16 path (CUDA in practice) rescales weight and styles before demodulating; the
    # result must be what fp32 gives, to fp16 precision. CPU kernels run fp16 too.
    torch.manual_seed(6)
    x, w, s = torch.randn(2, 8, 8, 8), torch.randn(4, 8, 3, 3), torch.randn(2, 8) * 30
    noise, f = torch.randn(2, 1, 16, 16), setup_filter()
    kwargs = {"up": 2, "resample_filter": f, "noise": noise, "gain": 1.4, "form": form}
    ref = modulated_conv2d(x, w * 100, s, **kwargs)
    half = modulated_conv2d(x.half(), w * 100, s, **kwargs)
    assert half.dtype == torch.float16
    torch.testing.assert_close(half.float(), ref, atol=1e-2, rtol=1e-2)


def saved_shapes(fn, *inputs):
    """Shapes of every tensor autograd keeps for the backward pass of fn(*inputs)."""
    shapes = []

    def pack(t):
        shapes.append(tuple(t.shape))
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn(*inputs)
    return shapes


@pytest.mark.parametrize(("up", "down"), [(1, 1), (2, 1), (1, 2)])
def test_a_fixed_weight_convolution_keeps_no_activation_and_differentiates_twice(up, down):
    # D's layers while G trains, and every FIR filter: the weight takes no gradient, so only
    # the (unscaled) weight is kept for backward, and R1 / path length still differentiate the
    # gradient: checked against finite differences to second order.
    torch.manual_seed(4)
    x = torch.randn(2, 3, 6, 6, dtype=F64, requires_grad=True)
    w = torch.randn(4, 3, 3, 3, dtype=F64)
    b = torch.randn(4, dtype=F64)
    f = setup_filter().to(F64)

    def conv(x):
        return conv2d_resample(x, w, f, up=up, down=down, bias=b, weight_gain=0.3)

    ref = reference_conv(x.detach(), w * 0.3, f, up, down) + b.reshape(1, -1, 1, 1)
    torch.testing.assert_close(conv(x), ref, **TOL)
    kept = saved_shapes(conv, x)
    assert kept
    assert all(len(s) == 4 and s[0] != 2 for s in kept)  # weights and filters only
    assert torch.autograd.gradcheck(conv, (x,))
    assert torch.autograd.gradgradcheck(conv, (x,))


def test_a_trained_weight_convolution_gets_its_gradient_with_the_gain():
    torch.manual_seed(5)
    x = torch.randn(2, 3, 6, 6, dtype=F64, requires_grad=True)
    w = torch.randn(4, 3, 3, 3, dtype=F64, requires_grad=True)
    f = setup_filter().to(F64)
    for up, down in ((1, 1), (2, 1), (1, 2)):

        def conv(x, w, up=up, down=down):
            return conv2d_resample(x, w, f, up=up, down=down, weight_gain=0.3)

        assert torch.autograd.gradcheck(conv, (x, w))


@pytest.mark.parametrize(("k", "up"), [(3, 1), (3, 2), (1, 1), (1, 2)])
def test_an_input_scaled_convolution_keeps_only_its_input_and_differentiates_twice(k, up):
    # The "split" modulation: conv(x * s). Only x (no product x * s) is kept for backward,
    # and path length differentiates the gradient: checked against finite differences.
    torch.manual_seed(6)
    x = torch.randn(2, 3, 5, 5, dtype=F64, requires_grad=True)
    s = torch.randn(2, 3, dtype=F64, requires_grad=True)
    w = torch.randn(4, 3, k, k, dtype=F64, requires_grad=True)
    f = setup_filter().to(F64)

    def conv(x, s, w):
        return conv2d_resample(x, w, f, up=up, weight_gain=0.3, input_scale=s)

    ref = reference_conv(x.detach() * s.detach()[:, :, None, None], w.detach() * 0.3, f, up, 1)
    torch.testing.assert_close(conv(x, s, w), ref, **TOL)
    kept = saved_shapes(conv, x, s, w)
    assert sum(shape == (2, 3, 5, 5) for shape in kept) == 1  # x itself, not also x * s
    assert torch.autograd.gradcheck(conv, (x, s, w))
    assert torch.autograd.gradgradcheck(conv, (x, s, w))
    with torch.no_grad():
        torch.testing.assert_close(conv(x, s, w), ref, **TOL)


def test_a_trained_conv_layer_moves_its_weight_gain_past_the_convolution():
    # While its weight trains, Conv2dLayer keeps no scaled copy of the weight for backward,
    # and gives the same output and gradients as without gradients (the plain form).
    torch.manual_seed(7)
    layer = Conv2dLayer(3, 4, 3, activation="lrelu", down=2, resample_filter=setup_filter())
    layer.bias.data.normal_()
    x = torch.randn(2, 3, 8, 8, requires_grad=True)
    with torch.no_grad():
        plain = layer(x, gain=0.7)
    trained = layer(x, gain=0.7)
    torch.testing.assert_close(trained, plain, atol=1e-5, rtol=1e-5)
    kept = saved_shapes(lambda x: layer(x, gain=0.7), x)
    assert sum(shape == tuple(layer.weight.shape) for shape in kept) == 1  # the parameter only
    trained.square().sum().backward()
    ref_w = layer.weight.detach().clone().requires_grad_(True)
    ref = nnf.leaky_relu(
        reference_conv(
            x.detach().double(), ref_w.double() * layer.weight_gain, setup_filter().double(), 1, 2
        )
        + layer.bias.detach().double().reshape(1, -1, 1, 1),
        0.2,
    ) * (math.sqrt(2) * 0.7)
    ref.square().sum().backward()
    torch.testing.assert_close(layer.weight.grad, ref_w.grad.float(), atol=1e-4, rtol=1e-4)
