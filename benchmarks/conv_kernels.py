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

--dtype bf16 times the same kernels in bf16 (the reduced blocks of a CPU with native bf16),
and every run adds the other kernels of a block: the upsampling transposed convolution's input
and weight gradients, and the FIR filters' depthwise convolutions (forward and input gradient;
their weights never train). nets/layers.memory_format's policy per dtype rests on these.
Usage: python benchmarks/conv_kernels.py [--repeats 3] [--dtype fp32|bf16]
"""

import argparse
import json
import os
import time

import torch
from torch.nn import functional

from cpu_reference import conv_peak

SHAPES = ((256, 64), (512, 32), (512, 16), (512, 8))  # (channels, resolution) at batch 8
BATCH = 8
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def _best_ms(runs: dict, repeats: int) -> dict:
    """Best time of each run in ms; the runs alternate, so that a burst of load from other
    processes (which only ever adds time) is unlikely to favour one."""
    for run in runs.values():
        run()  # kernel choice, first-touch allocations
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(repeats):
        for key, run in runs.items():
            start = time.perf_counter()
            run()
            best[key] = min(best[key], time.perf_counter() - start)
    return {key: seconds * 1000 for key, seconds in best.items()}


def _kernels(channels: int, res: int, layout: torch.memory_format, dtype: torch.dtype) -> dict:
    def tensor(*shape: int) -> torch.Tensor:
        return torch.randn(*shape).to(dtype=dtype, memory_format=layout)

    x, grad = tensor(BATCH, channels, res, res), tensor(BATCH, channels, res, res)
    w = tensor(channels, channels, 3, 3)
    grad_up = tensor(BATCH, channels, 2 * res + 1, 2 * res + 1)  # stride-2 3x3 transposed
    fir = tensor(channels, 1, 4, 4)  # the [1, 3, 3, 1] filter, depthwise
    grad_fir = tensor(BATCH, channels, res - 3, res - 3)  # the 4x4 filter, unpadded

    def backward(grad_out, inp, weight, stride, padding, transposed, groups, mask):
        return lambda: torch.ops.aten.convolution_backward(
            grad_out, inp, weight, None, [stride] * 2, [padding] * 2, [1, 1], transposed,
            [0, 0], groups, mask,
        )  # fmt: skip

    return {  # nothing requires grad: no graph is recorded
        "forward": lambda: functional.conv2d(x, w, padding=1),
        "input_grad": backward(grad, x, w, 1, 1, False, 1, [True, False, False]),
        "weight_grad": backward(grad, x, w, 1, 1, False, 1, [False, True, False]),
        "upsample_transposed": lambda: functional.conv_transpose2d(x, w, stride=2),
        "upsample_input_grad": backward(grad_up, x, w, 2, 0, True, 1, [True, False, False]),
        "upsample_weight_grad": backward(grad_up, x, w, 2, 0, True, 1, [False, True, False]),
        "fir_forward": lambda: functional.conv2d(x, fir, groups=channels),
        "fir_input_grad": backward(grad_fir, x, fir, 1, 0, False, channels, [True, False, False]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dtype", choices=tuple(DTYPES), default="fp32")
    args = parser.parse_args()
    dtype = DTYPES[args.dtype]
    peak = conv_peak()
    layouts = {"nchw": torch.contiguous_format, "channels_last": torch.channels_last}
    for channels, res in SHAPES:
        flops = 2 * BATCH * channels * channels * 9 * res * res  # of the dense 3x3 kernels
        kernels = {name: _kernels(channels, res, layout, dtype) for name, layout in layouts.items()}
        for kernel in kernels["nchw"]:
            times = _best_ms({name: kernels[name][kernel] for name in layouts}, args.repeats)
            for name, ms in times.items():
                gflops = flops / ms / 1e6
                dense = not kernel.startswith("fir")  # FLOPs and peak: dense kernels only
                record = {
                    "benchmark": "conv_kernels",
                    "shape": [BATCH, channels, res, res],
                    "dtype": args.dtype,
                    "layout": name,
                    "kernel": kernel,
                    "ms": round(ms, 2),
                    "gflops": round(gflops, 1) if dense else None,
                    "peak_fraction": round(gflops / peak, 3) if dense else None,
                    "conv_peak_gflops": round(peak, 1),
                    "threads": torch.get_num_threads(),
                    "load_average_1min": round(os.getloadavg()[0], 2),
                }
                print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
