"""The low-level operations of StyleGAN2 in plain PyTorch.

FIR resampling (upfirdn2d and its fast 2x helpers), bias + activation, and convolutions that
up- or downsample through the FIR filter. Since StyleGAN (Karras et al. 2019, after Zhang 2019)
every resampling step is low-pass filtered with the [1, 3, 3, 1] binomial filter, so that the
networks do not alias. No compiled extensions: everything is a handful of torch calls, which
is what the CPU wants anyway (conv2d, conv_transpose2d and depthwise convolutions map to oneDNN).

Conventions follow the official networks so that their weights mean the same here: the filter
is applied as a true convolution (flipped) unless flip_filter, upsampling convolutions use the
transposed convolution of the unflipped weight, and plain/downsampling convolutions correlate.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence

import torch
import torch.nn.functional as nnf

LRELU_ALPHA = 0.2
# The gains keep the activations' second moment unchanged through each nonlinearity (He et al.).
ACTIVATION_GAINS = {"linear": 1.0, "lrelu": math.sqrt(2.0)}

Padding = int | Sequence[int]


def setup_filter(taps: Sequence[float] = (1, 3, 3, 1)) -> torch.Tensor:
    """The 2D resampling filter: the outer product of the taps, normalised to sum to one."""
    f = torch.as_tensor(taps, dtype=torch.float32)
    f = f[:, None] * f[None, :] if f.ndim == 1 else f
    return f / f.sum()


def _padding4(padding: Padding) -> tuple[int, int, int, int]:
    """(x0, x1, y0, y1) from one int or from (x0, x1, y0, y1)."""
    if isinstance(padding, int):
        return padding, padding, padding, padding
    values = tuple(int(p) for p in padding)
    if len(values) != 4:
        raise ValueError(f"padding needs 1 or 4 numbers, got {values}")
    x0, x1, y0, y1 = values
    return x0, x1, y0, y1


def _scaled_conv(
    x: torch.Tensor,
    w: torch.Tensor,
    gain: float,
    bias: torch.Tensor | None,
    stride: int,
    padding: tuple[int, int],
    groups: int,
    transposed: bool,
    output_padding: tuple[int, int] = (0, 0),
) -> torch.Tensor:
    """nnf.conv2d or conv_transpose2d with the weight w * gain."""
    w = w * gain if gain != 1 else w
    if transposed:
        return nnf.conv_transpose2d(x, w, bias, stride, padding, output_padding, groups)
    return nnf.conv2d(x, w, bias, stride, padding, 1, groups)


# Inside no_weight_gradients(): the styled convolutions' backward skips their weights' gradients.
# A module global, as in the official code, not a thread-local: on a GPU autograd runs backward
# passes on its own device threads.
_weight_gradients_off = 0


@contextlib.contextmanager
def no_weight_gradients() -> Iterator[None]:
    """Backward passes run inside skip the modulated convolutions' weight gradients.

    For the path-length regulariser's inner gradient, taken with respect to ws only: autograd
    still asks for the weights' gradients there (they require grad, as G trains), and they
    would be computed for nothing and kept in the double-backward graph. The weights still get
    their gradient from the penalty, through the input gradients, which depend on them."""
    global _weight_gradients_off
    _weight_gradients_off += 1
    try:
        yield
    finally:
        _weight_gradients_off -= 1


class _Ctx(torch.autograd.function.FunctionCtx):
    """What autograd passes to forward and backward, as far as this module uses it; torch's
    own stubs declare saved_tensors and needs_input_grad on a private base class only."""

    saved_tensors: tuple[torch.Tensor, ...]
    needs_input_grad: tuple[bool, ...]


class _InputOnlyCtx(_Ctx):
    # gain, stride, padding, groups, transposed, the input's (H, W)
    settings: tuple[float, int, tuple[int, int], int, bool, tuple[int, int]]


class _StyledCtx(_Ctx):
    # gain, stride, padding, groups, transposed
    settings: tuple[float, int, tuple[int, int], int, bool]


class _InputOnlyConv(torch.autograd.Function):
    """conv2d or conv_transpose2d with weight * gain, where weight and bias take no gradient:
    a fixed FIR filter, or D's layers while G trains. Autograd's own convolution keeps its
    input for the weight's gradient even then, one activation-sized tensor per layer, and the
    scaled weight; this keeps only the unscaled weight (a parameter, so no copy) and scales it
    again when needed. Its backward is the same operation transposed (the adjoint), through
    this same function, so gradients of gradients (R1, path length) work to any order."""

    @staticmethod
    def forward(
        ctx: _InputOnlyCtx,
        x: torch.Tensor,
        w: torch.Tensor,
        gain: float,
        bias: torch.Tensor | None,
        stride: int,
        padding: tuple[int, int],
        groups: int,
        transposed: bool,
        output_padding: tuple[int, int],
    ) -> torch.Tensor:
        ctx.save_for_backward(w)
        ctx.settings = (gain, stride, padding, groups, transposed, (x.shape[2], x.shape[3]))
        return _scaled_conv(x, w, gain, bias, stride, padding, groups, transposed, output_padding)

    @staticmethod
    def backward(ctx: _InputOnlyCtx, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        (w,) = ctx.saved_tensors
        gain, stride, padding, groups, transposed, in_size = ctx.settings
        output_padding = (0, 0)
        if not transposed:  # the transposed conv must give back exactly the input's size
            k = w.shape[2:]
            rows, cols = (
                in_size[i] - ((grad.shape[2 + i] - 1) * stride - 2 * padding[i] + k[i])
                for i in range(2)
            )
            output_padding = (rows, cols)
        args = (stride, padding, groups, not transposed, output_padding)
        grad_x = (
            _InputOnlyConv.apply(grad, w, gain, None, *args) if ctx.needs_input_grad[0] else None
        )
        return grad_x, None, None, None, None, None, None, None, None


class _StyledConv(torch.autograd.Function):
    """conv2d or conv_transpose2d of x * s (s: one scale per image and input channel, the
    modulation of StyleGAN2's "split" form) with weight * gain. Autograd would keep x for the
    gradient of s and the product x * s for the weight's: two activation-sized tensors per
    layer. This keeps only x (usually the previous layer's activation, kept anyway) and
    multiplies again in backward, one cheap pass. The backward is made of differentiable
    operations, so gradients of gradients (path length) work."""

    @staticmethod
    def forward(
        ctx: _StyledCtx,
        x: torch.Tensor,
        s: torch.Tensor,
        w: torch.Tensor,
        gain: float,
        stride: int,
        padding: tuple[int, int],
        groups: int,
        transposed: bool,
    ) -> torch.Tensor:
        ctx.save_for_backward(x, s, w)
        ctx.settings = (gain, stride, padding, groups, transposed)
        return _scaled_conv(
            _scale_channels(x, s), w, gain, None, stride, padding, groups, transposed
        )

    @staticmethod
    def backward(ctx: _StyledCtx, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, s, w = ctx.saved_tensors
        gain, stride, padding, groups, transposed = ctx.settings
        need_x, need_s, need_w = ctx.needs_input_grad[:3]
        need_w = need_w and not _weight_gradients_off
        grad_xs, grad_w, _ = torch.ops.aten.convolution_backward(
            grad,
            _scale_channels(x, s),
            w * gain if gain != 1 else w,
            None,  # no bias
            [stride, stride],
            list(padding),
            [1, 1],  # dilation
            transposed,
            [0, 0],  # output padding
            groups,
            [need_x or need_s, need_w, False],
        )
        grad_x = _scale_channels(grad_xs, s) if need_x else None
        grad_s = (grad_xs * x).sum(dim=[2, 3]).to(s.dtype) if need_s else None
        if need_w and gain != 1:
            grad_w = grad_w * gain
        return grad_x, grad_s, grad_w, None, None, None, None, None


def _scale_channels(x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """x [N, C, H, W] times s [N, C], one scale per image and channel."""
    return x * s.to(x.dtype).reshape(*s.shape, 1, 1)


def _conv(
    x: torch.Tensor,
    w: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: int = 1,
    padding: int | tuple[int, int] = 0,
    groups: int = 1,
    transposed: bool = False,
    gain: float = 1.0,
    input_scale: torch.Tensor | None = None,
) -> torch.Tensor:
    """nnf.conv2d (or conv_transpose2d) of x [* input_scale] with weight * gain; keeps less
    for backward when it can."""
    pad = (padding, padding) if isinstance(padding, int) else (padding[0], padding[1])
    if input_scale is not None:
        if bias is not None:
            raise ValueError("a convolution with an input scale takes no bias")
        tensors = (x, input_scale, w)
        if torch.is_grad_enabled() and any(t.requires_grad for t in tensors):
            return _StyledConv.apply(*tensors, gain, stride, pad, groups, transposed)
        x = _scale_channels(x, input_scale)
    lean = (
        torch.is_grad_enabled()
        and x.requires_grad
        and not w.requires_grad
        and (bias is None or not bias.requires_grad)
    )
    if lean:
        return _InputOnlyConv.apply(x, w, gain, bias, stride, pad, groups, transposed, (0, 0))
    return _scaled_conv(x, w, gain, bias, stride, pad, groups, transposed)


def _depthwise(f: torch.Tensor, channels: int, dtype: torch.dtype) -> torch.Tensor:
    """The filter as the weight of a depthwise convolution over `channels` channels."""
    return f.to(dtype)[None, None].expand(int(channels), 1, *map(int, f.shape))  # ints: export


def upfirdn2d(
    x: torch.Tensor,
    f: torch.Tensor,
    up: int = 1,
    down: int = 1,
    padding: Padding = 0,
    flip_filter: bool = False,
    gain: float = 1.0,
) -> torch.Tensor:
    """Upsample by zero insertion, pad, convolve with the 2D FIR filter f, keep every down-th.

    Negative padding crops. The output is (H * up + y0 + y1 - fh) // down + 1 pixels high.
    """
    x0, x1, y0, y1 = _padding4(padding)
    n, c, h, w = x.shape
    if up > 1:
        # Each pixel followed by up - 1 zeros, along both axes.
        x = x.reshape(n, c, h, 1, w, 1)
        x = nnf.pad(x, [0, up - 1, 0, 0, 0, up - 1])
        x = x.reshape(n, c, h * up, w * up)
    symmetric = x0 == x1 == y0 == y1 and x0 >= 0
    if not symmetric:
        x = nnf.pad(x, [max(x0, 0), max(x1, 0), max(y0, 0), max(y1, 0)])
        x = x[:, :, max(-y0, 0) : x.shape[2] - max(-y1, 0), max(-x0, 0) : x.shape[3] - max(-x1, 0)]
    weight = f * gain if flip_filter else f.flip([0, 1]) * gain
    return _conv(
        x, _depthwise(weight, c, x.dtype), stride=down, padding=x0 if symmetric else 0, groups=c
    )


def upsample2d(x: torch.Tensor, f: torch.Tensor, gain: float = 4.0) -> torch.Tensor:
    """2x upsampling with an even-sized FIR filter; same result as
    upfirdn2d(x, f, up=2, padding=(fw // 2, fw // 2 - 1) per axis, gain=4).

    One strided depthwise transposed convolution never multiplies the inserted zeros.
    """
    fh, fw = f.shape
    if fh % 2 or fw % 2:
        raise ValueError(f"upsample2d needs an even-sized filter, got {fh}x{fw}")
    weight = _depthwise(f * gain, x.shape[1], x.dtype)
    padding = (fh // 2 - 1, fw // 2 - 1)
    return _conv(x, weight, stride=2, padding=padding, groups=x.shape[1], transposed=True)


def downsample2d(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """2x downsampling with an even-sized FIR filter; same result as
    upfirdn2d(x, f, down=2, padding=fw // 2 - 1), computed only where it is kept."""
    fh, fw = f.shape
    if fh % 2 or fw % 2:
        raise ValueError(f"downsample2d needs an even-sized filter, got {fh}x{fw}")
    weight = _depthwise(f.flip([0, 1]), x.shape[1], x.dtype)
    return _conv(x, weight, stride=2, padding=(fh // 2 - 1, fw // 2 - 1), groups=x.shape[1])


def bias_act(
    x: torch.Tensor,
    b: torch.Tensor | None = None,
    act: str = "linear",
    gain: float | None = None,
    clamp: float | None = None,
    fresh: bool = False,
) -> torch.Tensor:
    """act(x + b) * gain, then clamped to +-clamp; b is per channel (dim 1).

    gain defaults to the activation's own gain (sqrt(2) for lrelu). lrelu is positively
    homogeneous, lrelu(x + b) * g == lrelu(g * x + g * b), so the gain costs no extra pass: it
    joins the bias in one multiply-add (callers fold it into their weights when they can).
    fresh: x is a temporary of the caller's that may be overwritten, which saves a pass and an
    allocation (it must not be needed by autograd, e.g. a convolution's output).
    """
    if act not in ACTIVATION_GAINS:
        raise ValueError(f"unknown activation {act!r}; known: {', '.join(ACTIVATION_GAINS)}")
    gain = ACTIVATION_GAINS[act] if gain is None else gain
    if b is not None:
        b = b.to(x.dtype).reshape(1, -1, *([1] * (x.ndim - 2)))
    if b is not None and gain != 1:
        x, fresh = torch.add(b * gain, x, alpha=gain), True
    elif b is not None:
        x, fresh = (x.add_(b) if fresh else x + b), True
    elif gain != 1:
        x, fresh = x * gain, True
    if act == "lrelu":
        x = nnf.leaky_relu(x, LRELU_ALPHA, inplace=fresh)
    return x if clamp is None else x.clamp(-clamp, clamp)


def _transpose_weight(w: torch.Tensor, groups: int) -> torch.Tensor:
    """[G*out, in, k, k] -> [G*in, out, k, k]: the weight layout of conv_transpose2d."""
    out_total, in_per_group, kh, kw = map(int, w.shape)  # plain ints also when traced (export)
    w = w.reshape(groups, out_total // groups, in_per_group, kh, kw).transpose(1, 2)
    return w.reshape(groups * in_per_group, out_total // groups, kh, kw)


def conv2d_resample(
    x: torch.Tensor,
    w: torch.Tensor,
    f: torch.Tensor | None = None,
    up: int = 1,
    down: int = 1,
    groups: int = 1,
    bias: torch.Tensor | None = None,
    weight_gain: float = 1.0,
    input_scale: torch.Tensor | None = None,
) -> torch.Tensor:
    """A 'same' convolution with an odd square kernel and weight w * weight_gain, optionally
    2x up or down through f. input_scale [N, C] multiplies x per image and channel first
    (modulation); not with down=2.

    up=2: transposed convolution (stride 2, true convolution with w), then the FIR filter.
    down=2: the FIR filter, then a stride-2 correlation with w. 1x1 kernels resample the
    cheaper side (fewer channels x pixels): after the conv when upsampling, before when down.
    bias, when given, is added last.
    """
    k = int(w.shape[-1])  # weights and filters have fixed sizes, also when traced (export)
    if up == 1 and down == 1:
        return _conv(
            x, w, bias, padding=k // 2, groups=groups, gain=weight_gain, input_scale=input_scale
        )
    if f is None or (up, down) not in ((2, 1), (1, 2)):
        raise ValueError(
            f"conv2d_resample supports up=2 or down=2 with a filter, got {up=} {down=}"
        )
    fw = int(f.shape[-1])
    if down == 2:
        if input_scale is not None:
            raise ValueError("conv2d_resample takes no input_scale when downsampling")
        if k == 1:
            return _conv(downsample2d(x, f), w, bias, groups=groups, gain=weight_gain)
        # FIR with the conv's own padding folded in, then the strided conv without padding.
        x = upfirdn2d(x, f, padding=k // 2 + fw // 2 - 1)
        return _conv(x, w, bias, stride=2, groups=groups, gain=weight_gain)
    if k == 1:
        x = upsample2d(_conv(x, w, groups=groups, gain=weight_gain, input_scale=input_scale), f)
    else:
        w = _transpose_weight(w, groups)
        x = _conv(
            x,
            w,
            stride=2,
            groups=groups,
            transposed=True,
            gain=weight_gain,
            input_scale=input_scale,
        )
        # The transposed conv made 2H + k - 2 pixels; the filter (gain 4 keeps the mean) trims
        # them back to 2H, aligned like zero insertion followed by a 'same' convolution.
        x = upfirdn2d(x, f, padding=fw // 2 - (k - 1) // 2, gain=4.0)
    return x if bias is None else x + bias.reshape(1, -1, 1, 1)
