"""Where the CPU training ceiling is: the three kernels of every convolution, JSON lines.

A training step is >90% convolutions (forward, input gradient, weight gradient), so its
fraction of this CPU's conv peak is bounded by theirs. For the 3x3 shapes of the 64 px "auto"
config at batch 8 this prints GFLOP/s and the fraction of peak of each kernel, in NCHW (the
layout heroforge trains in) and channels-last, and of the stride-2 transposed convolution that
upsamples in G. Session 9 measured (64 and 32 px shapes, conv peak 131 GFLOP/s): NCHW forward
0.82-0.88 of peak, input gradient 0.75-0.88, weight gradient 0.62-0.77; channels-last forward
0.94-1.06 and input gradient 0.86-1.07, but weight gradient 0.25-0.45; the stride-2 transposed
upsampling 0.49-0.55 in NCHW, 0.65-0.76 channels-last. Mixing them (channels-last forward and
input gradient, NCHW weight gradient) was no faster over a whole forward + backward: the
layout conversions cost what the kernels save. Runs differ by up to 30% on a busy machine.
Usage: python benchmarks/conv_kernels.py [--repeats 3]
"""

import argparse
import json
import time

import torch
from torch.nn import functional

from cpu_reference import conv_peak

SHAPES = ((256, 64), (512, 32), (512, 16), (512, 8))  # (channels, resolution) at batch 8
BATCH = 8


def _best_ms(run, repeats: int) -> float:
    run()  # kernel choice, first-touch allocations
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best * 1000


def _kernels(channels: int, res: int, layout: torch.memory_format) -> dict:
    x = torch.randn(BATCH, channels, res, res).to(memory_format=layout)
    w = torch.randn(channels, channels, 3, 3).to(memory_format=layout)
    grad = torch.randn(BATCH, channels, res, res).to(memory_format=layout)

    def backward(mask: list[bool]):
        return lambda: torch.ops.aten.convolution_backward(
            grad, x, w, None, [1, 1], [1, 1], [1, 1], False, [0, 0], 1, mask
        )

    return {  # nothing requires grad: no graph is recorded
        "forward": lambda: functional.conv2d(x, w, padding=1),
        "input_grad": backward([True, False, False]),
        "weight_grad": backward([False, True, False]),
        "upsample_transposed": lambda: functional.conv_transpose2d(x, w, stride=2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    peak = conv_peak()
    for channels, res in SHAPES:
        flops = 2 * BATCH * channels * channels * 9 * res * res  # the same for all four
        for name, layout in (
            ("nchw", torch.contiguous_format),
            ("channels_last", torch.channels_last),
        ):
            for kernel, run in _kernels(channels, res, layout).items():
                ms = _best_ms(run, args.repeats)
                gflops = flops / ms / 1e6
                record = {
                    "benchmark": "conv_kernels",
                    "shape": [BATCH, channels, res, res],
                    "layout": name,
                    "kernel": kernel,
                    "ms": round(ms, 1),
                    "gflops": round(gflops, 1),
                    "peak_fraction": round(gflops / peak, 3),
                    "conv_peak_gflops": round(peak, 1),
                    "threads": torch.get_num_threads(),
                }
                print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
