"""benchmarks/gpu_first_run.py: its CPU smoke path end to end, and the host-wait tracing that
only a GPU's profile feeds (given hand-made profiler events here)."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from torch.autograd import DeviceType
from torch.autograd.profiler_util import FunctionEvent

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_first_run.py"


def run_script(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=900,  # a loaded two-core machine: generous
        env=env,
    )


def load_script():
    spec = importlib.util.spec_from_file_location("gpu_first_run", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_cpu_smoke_path_reports_waits_not_applicable_and_fid_per_precision(tiny_archive, tmp_path):
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}  # real-feature cache
    args = ["--device", "cpu", "--parts", "waits,fid", "--data", str(tiny_archive)]
    args += ["--kimg", "0.016", "--images", "12", "--out", str(tmp_path / "work")]
    done = run_script(*args, env=env)
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["part"] for r in records] == ["waits", "fid", "fid"]
    waits, fp32, bf16 = records
    assert waits["status"] == "not applicable"
    # "precision" is what the top blocks computed in: the tiny run has reduced-precision ones
    assert [fp32["precision"], bf16["precision"]] == ["fp32", "bf16"]
    assert fp32["network"] == "G_ema"
    assert fp32["images"] == 12
    assert math.isfinite(fp32["fid"])
    assert fp32["fid"] > 0
    assert fp32["fid_minus_fp32"] == 0
    assert bf16["fid_minus_fp32"] == pytest.approx(bf16["fid"] - fp32["fid"], abs=1e-3)
    assert Path(fp32["model"]).parent == tmp_path / "work" / "runs"  # the tiny run it trained


def test_fp16_on_the_cpu_and_unknown_parts_are_refused_in_one_line():
    fp16 = run_script("--device", "cpu", "--parts", "fid", "--precisions", "fp32,fp16")
    assert fp16.returncode == 2
    assert "--precisions fp16 needs --device cuda" in fp16.stderr.splitlines()[-1]
    unknown = run_script("--device", "cpu", "--parts", "waits,speeed")
    assert unknown.returncode == 2
    assert "--parts: unknown speeed" in unknown.stderr.splitlines()[-1]


def host_event(name: str, start: float, end: float, stack: list[str] | None = None):
    return FunctionEvent(0, name, 1, start, end, stack=stack or [], device_type=DeviceType.CPU)


def test_waits_are_traced_to_the_innermost_heroforge_frame():
    script = load_script()
    events = [
        # torch 2.5+: Python frames are events of their own, nested in time
        host_event("src/heroforge/train/loop.py(254): step", 0, 100),
        host_event("src/heroforge/augment/ada.py(105): step", 10, 20),
        host_event("aten::_local_scalar_dense", 11, 19),
        host_event("cudaStreamSynchronize", 12, 18),  # ADA's r_t: planned
        host_event("src/heroforge/train/loss.py(64): g_main", 30, 40),
        host_event("cudaStreamSynchronize", 31, 32),  # unplanned
        host_event("cudaMemcpyAsync", 33, 34),  # a copy alone is no wait
        # earlier torch: the enclosing op carries the stack, innermost frame first
        host_event("aten::item", 50, 60, ["heroforge/train/stats.py(28): add", "x.py(1): f"]),
        host_event("cudaDeviceSynchronize", 51, 52),
        host_event(script.WINDOW_END, 200, 210),
        host_event("cudaDeviceSynchronize", 201, 209),  # the profiler window's own
        host_event("cudaStreamSynchronize", 300, 301),  # nothing of heroforge around it
        FunctionEvent(
            0, "Memcpy DtoH (Device -> Pageable)", 7, 12, 13, device_type=DeviceType.CUDA
        ),
        FunctionEvent(0, "Memcpy HtoD (Pageable -> Device)", 7, 1, 2, device_type=DeviceType.CUDA),
        FunctionEvent(0, "Memcpy HtoD (Pinned -> Device)", 7, 3, 4, device_type=DeviceType.CUDA),
    ]
    found = script.count_waits(events)
    assert found["sources"] == {
        "heroforge/augment/ada.py(105): step": 1,
        "heroforge/train/loss.py(64): g_main": 1,
        "heroforge/train/stats.py(28): add": 1,
        script.WINDOW_END: 1,
        "outside heroforge": 1,
    }
    assert found["dtoh_copies"] == 1
    assert found["pageable_htod_copies"] == 1
