"""Pixel-exact blits and alias-free affine resampling for the augmentation pipe.

Coordinates are in pixels of the input image, measured from its centre, x to the right and y
down; pixel (row i, column j) has its centre at (j + 0.5 - W/2, i + 0.5 - H/2). Missing pixels
are filled by reflection (the edge pixel is not repeated, like torch's "reflect" mode), so no
constant border appears that the discriminator could learn and the generator could imitate.
"""

from __future__ import annotations

import torch
from torch.nn import functional

HALF_TAPS = 6  # the low-pass filter has 2 * HALF_TAPS taps at twice the image resolution
KAISER_BETA = 4.0  # window shape: passband within 2% up to 60% of Nyquist, stopband < -35 dB


def halfband_filter(half_taps: int = HALF_TAPS, beta: float = KAISER_BETA) -> torch.Tensor:
    """A Kaiser-windowed sinc for 2x up/downsampling, cut off at the input's Nyquist frequency.

    The taps sit half a sample off the centre (even length), which is where the samples of a
    2x upsampled image fall relative to the input pixel centres. Sums to 2, so each of the two
    polyphase halves sums to 1: upsampling keeps a constant image constant.
    """
    offsets = (torch.arange(2 * half_taps, dtype=torch.float64) - half_taps + 0.5) / 2
    radius = half_taps / 2  # support in input pixels
    taps = torch.sinc(offsets) * torch.special.i0(beta * torch.sqrt(1 - (offsets / radius) ** 2))
    return (taps * 2 / taps.sum()).float()


_TAPS = halfband_filter()


def to_device(
    t: torch.Tensor, device: torch.device, dtype: torch.dtype | None = None
) -> torch.Tensor:
    """A small host tensor on `device` without the host waiting for the device.

    A copy from pageable host memory may be synchronous on CUDA: it would wait for the work
    queued before it. From pinned (page-locked) memory it is a true asynchronous copy, and
    torch's caching host allocator keeps the pinned block until the copy is done. On the CPU
    nothing is copied.
    """
    if device.type == "cpu" or t.device.type != "cpu":
        return t.to(device, dtype)
    return t.pin_memory().to(device, dtype, non_blocking=True)


def mirror(index: torch.Tensor, size: int) -> torch.Tensor:
    """Fold integer indices into [0, size) by reflection at the borders: -1 -> 1, size -> size-2."""
    period = max(2 * size - 2, 1)  # a 1-pixel axis has period 1, so every index folds to 0
    folded = index.remainder(period)
    return torch.where(folded >= size, period - folded, folded)


def blit(
    images: torch.Tensor,
    flip: torch.Tensor,
    quarter_turns: torch.Tensor,
    shift_x: torch.Tensor,
    shift_y: torch.Tensor,
) -> torch.Tensor:
    """Flip, rotate by multiples of 90 degrees and shift by whole pixels, per image, by copying.

    flip (bool), quarter_turns (int, counter-clockwise as torch.rot90 on dims (2, 3)) and the
    integer shifts are [N] tensors applied in that order, best given on the host (the pipe's
    are). One gather moves every pixel, so the result holds only input values (exact,
    differentiable). Quarter turns need square images.
    """
    n, c, h, w = images.shape
    if h != w and bool((quarter_turns % 2 == 1).any()):
        raise ValueError(f"quarter turns need square images, got {h}x{w}")
    flip, quarter_turns, shift_x, shift_y = (
        to_device(t, images.device) for t in (flip, quarter_turns, shift_x, shift_y)
    )
    k = quarter_turns.view(n, 1)
    # Walk back from each output pixel to its source: undo the shift, then the turn, then the
    # flip. Every step is a per-image 1-D index map; only the last one builds the 2-D index.
    rows = mirror(torch.arange(h, device=images.device) - shift_y.view(n, 1), h)
    cols = mirror(torch.arange(w, device=images.device) - shift_x.view(n, 1), w)
    # A turn by k sends output (r, c) to the source (r, c), (c, w-1-r), (h-1-r, w-1-c) or
    # (w-1-c, r): even turns keep rows as rows, odd ones swap rows and columns.
    even_rows = torch.where(k == 0, rows, h - 1 - rows)  # [n, h], by output row
    even_cols = torch.where(k == 0, cols, w - 1 - cols)  # [n, w], by output column
    odd_rows = torch.where(k == 1, cols, w - 1 - cols)  # [n, w], by output column
    odd_cols = torch.where(k == 1, h - 1 - rows, rows)  # [n, h], by output row
    mirrored = flip.view(n, 1)
    even_cols = torch.where(mirrored, w - 1 - even_cols, even_cols)
    odd_cols = torch.where(mirrored, w - 1 - odd_cols, odd_cols)
    even = even_rows[:, :, None] * w + even_cols[:, None, :]
    odd = odd_rows[:, None, :] * w + odd_cols[:, :, None]
    index = torch.where((k % 2 == 1).view(n, 1, 1), odd, even).view(n, 1, h * w)
    index = index.expand(n, c, h * w)
    return images.reshape(n, c, h * w).gather(2, index).view(n, c, h, w)


def autotuned(images: torch.Tensor) -> bool:
    """Whether cuDNN autotunes the convolutions on these images: it does so once for every new
    shape, so the geometric transforms then keep their shapes to a few."""
    return images.is_cuda and torch.backends.cudnn.benchmark


def _upsample2(images: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
    """2x upsampling, separable; the borders see zeros, so callers pad generously first."""
    n, c, h, w = images.shape
    g, k = n * c, taps.numel()
    # Every channel of every image is its own group: depthwise convolutions are several times
    # faster on the CPU than a batch of single-channel ones, forward and backward.
    x = images.reshape(1, g, h, w)
    x = functional.conv_transpose2d(
        x,
        taps.view(1, 1, 1, k).expand(g, 1, 1, k),
        stride=(1, 2),
        padding=(0, k // 2 - 1),
        groups=g,
    )
    x = functional.conv_transpose2d(
        x,
        taps.view(1, 1, k, 1).expand(g, 1, k, 1),
        stride=(2, 1),
        padding=(k // 2 - 1, 0),
        groups=g,
    )
    return x.view(n, c, 2 * h, 2 * w)


def _downsample2(images: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
    """2x downsampling without padding: the input carries k/2 - 1 extra samples per side."""
    n, c, h, w = images.shape
    g, k = n * c, taps.numel()
    x = images.reshape(1, g, h, w)
    x = functional.conv2d(x, taps.view(1, 1, 1, k).expand(g, 1, 1, k) / 2, stride=(1, 2), groups=g)
    x = functional.conv2d(x, taps.view(1, 1, k, 1).expand(g, 1, k, 1) / 2, stride=(2, 1), groups=g)
    return x.view(n, c, x.shape[2], x.shape[3])


def affine_resample(images: torch.Tensor, sample_matrix: torch.Tensor) -> torch.Tensor:
    """Warp each image by a 3x3 matrix that maps output coordinates to input coordinates.

    Reflect-pad just enough for every image of the batch, upsample 2x with a windowed sinc,
    sample bilinearly, and downsample 2x with the same filter: bilinear sampling at twice the
    resolution acts on a band-limited signal, so neither aliasing nor the padding leaks in.
    The padding is worked out where sample_matrix is: on the host (as the pipe gives it),
    that never waits for a GPU.
    """
    n, _, h, w = images.shape
    taps = to_device(_TAPS, images.device, images.dtype)
    half = taps.numel() // 2
    # The downsampling filter needs half - 1 extra high-res samples beyond each image border.
    reach_x = w / 2 + (half - 1.5) / 2
    reach_y = h / 2 + (half - 1.5) / 2
    corners = sample_matrix.new_tensor(
        [[sx * reach_x, sy * reach_y, 1.0] for sx in (-1, 1) for sy in (-1, 1)]
    )
    sources = corners @ sample_matrix.transpose(1, 2)  # [n, 4, 3]
    low = sources[..., :2].amin(dim=(0, 1))
    high = sources[..., :2].amax(dim=(0, 1))
    # Beyond the corners, upsampling and bilinear sampling read up to half/2 + 1 more pixels;
    # a margin of `half` keeps the zeros that _upsample2 sees at its borders out of reach.
    extent = sample_matrix.new_tensor([w, h]) / 2
    pads = torch.cat([-low - extent, high - extent]).add(half).clamp(min=0).ceil()
    pad_x0, pad_y0, pad_x1, pad_y1 = (int(v) for v in pads.tolist())
    sample_matrix = to_device(sample_matrix, images.device, images.dtype)
    if autotuned(images):
        # one padding for all sides, a multiple of 16, keeps the shapes few (more padding
        # than needed changes nothing but the cost)
        pad_x0 = pad_y0 = pad_x1 = pad_y1 = -(-max(pad_x0, pad_y0, pad_x1, pad_y1) // 16) * 16
    rows = mirror(torch.arange(-pad_y0, h + pad_y1, device=images.device), h)
    cols = mirror(torch.arange(-pad_x0, w + pad_x1, device=images.device), w)
    padded = images.index_select(2, rows).index_select(3, cols)
    upsampled = _upsample2(padded, taps)

    # High-res output samples, with the extra border the downsampling filter consumes.
    xs = (torch.arange(2 * w + 2 * half - 2, device=images.device) - half + 1.5) / 2 - w / 2
    ys = (torch.arange(2 * h + 2 * half - 2, device=images.device) - half + 1.5) / 2 - h / 2
    grid_y, grid_x = torch.meshgrid(ys.to(images.dtype), xs.to(images.dtype), indexing="ij")
    points = torch.stack([grid_x, grid_y, torch.ones_like(grid_x)], dim=-1)
    src = points.view(1, -1, 3) @ sample_matrix.transpose(1, 2)
    # grid_sample's [-1, 1] spans the padded image edge to edge (align_corners=False).
    width_p, height_p = w + pad_x0 + pad_x1, h + pad_y0 + pad_y1
    grid = torch.stack(
        [
            2 * (src[..., 0] + pad_x0 + w / 2) / width_p - 1,
            2 * (src[..., 1] + pad_y0 + h / 2) / height_p - 1,
        ],
        dim=-1,
    ).view(n, ys.numel(), xs.numel(), 2)
    warped = functional.grid_sample(
        upsampled, grid, mode="bilinear", padding_mode="zeros", align_corners=False
    )
    return _downsample2(warped, taps)
