"""The GPU training paths, exercised on the CPU: bf16 and fp16 blocks, loss scaling, compile."""

import json
from pathlib import Path

import pytest
import torch

from helpers.training import EVERY_PHASE
from heroforge.config import load_config
from heroforge.data.dataset import ImageDataset
from heroforge.nets.loading import load_latest
from heroforge.nets.synthesis import SynthesisBlock
from heroforge.runtime.dist import DistInfo
from heroforge.train import precision
from heroforge.train.loop import Trainer, phases_at
from heroforge.train.precision import Precision, resolve_precision
from heroforge.train.run import resume, start
from heroforge.train.stats import TickStats

CPU = torch.device("cpu")


def _trainer(archive: Path, run_dir: Path, *overrides: str) -> Trainer:
    cfg = load_config(
        "tiny-cpu", [*EVERY_PHASE, "network.num_fp16_res=2", "train.pl_interval=2", *overrides]
    )
    dataset = ImageDataset(archive, resolution=cfg.data.resolution)
    return Trainer(cfg, dataset, run_dir, DistInfo(0, 1, CPU))


def _steps(trainer: Trainer, count: int) -> TickStats:
    stats = TickStats()
    for _ in range(count):
        trainer.step(stats)
    return stats


def test_each_setting_means_one_thing_on_the_cpu():
    assert resolve_precision("fp32", CPU) == Precision(None, False)
    assert resolve_precision("fp16", CPU) == Precision(torch.float16, True)
    assert resolve_precision("bf16", CPU) == Precision(torch.bfloat16, False)
    assert resolve_precision("bf16", CPU).name == "bf16"


@pytest.mark.parametrize(("native", "chosen"), [(True, "bf16"), (False, "fp32")])
def test_auto_on_the_cpu_takes_bf16_only_where_it_is_native(monkeypatch, native, chosen):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: native)
    assert resolve_precision("auto", CPU).name == chosen


@pytest.mark.parametrize(
    ("flags", "native"),
    [
        ("fpu sse2 avx2 avx512f avx512_bf16 avx512_fp16", True),  # Sapphire Rapids, Zen 4
        ("fpu sse2 avx2 avx512f amx_bf16 amx_tile", True),
        ("fpu sse2 avx2 avx512f avx512bw avx512_vnni", False),  # Skylake-SP: emulated only
        ("fpu sse2 avx2", False),
    ],
)
def test_native_bf16_is_read_from_the_cpu_flags(tmp_path, flags, native):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nmodel name\t: some CPU\nflags\t\t: {flags}\n\n")
    assert precision.cpu_has_native_bf16(cpuinfo) is native
    assert precision.cpu_has_native_bf16(tmp_path / "absent") is False  # no /proc: macOS


@pytest.mark.parametrize(("capability", "chosen"), [((7, 0), "fp16"), ((8, 0), "bf16")])
def test_auto_on_a_gpu_takes_bf16_only_where_it_is_native(monkeypatch, capability, chosen):
    """V100 (7.0) and T4 (7.5) only emulate bf16: they get fp16 with loss scaling."""
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    assert resolve_precision("auto", torch.device("cuda", 0)).name == chosen


@pytest.mark.parametrize("setting", ["bf16", "fp16"])
def test_reduced_precision_trains_the_top_blocks_in_that_type(tiny_archive, tmp_path, setting):
    trainer = _trainer(tiny_archive, tmp_path, f"train.precision={setting}")
    seen: dict[int, torch.dtype] = {}
    for block in trainer.G.synthesis.blocks():
        block.conv1.register_forward_hook(
            lambda mod, _inp, out, res=block.resolution: seen.__setitem__(res, out.dtype)
        )
    before = {k: v.clone() for k, v in trainer.G.state_dict().items()}
    means = _steps(trainer, 4).means()
    expected = resolve_precision(setting, CPU).half
    assert seen[32] == seen[16] == expected  # num_fp16_res=2: the two top resolutions
    assert seen[8] == seen[4] == torch.float32
    assert all(torch.isfinite(torch.tensor(v)) for v in means.values() if isinstance(v, float))
    after = trainer.G.state_dict()
    assert all(after[k].dtype == torch.float32 for k in after)  # weights stay fp32
    assert any(not torch.equal(before[k], after[k]) for k in before)  # and they learn


def test_fp16_overflow_skips_the_step_and_lowers_the_scale_which_the_checkpoint_keeps(
    tiny_archive, tmp_path
):
    trainer = _trainer(tiny_archive, tmp_path, "train.precision=fp16", "train.r1_gamma=0")
    assert trainer.scalers["G"].is_enabled()
    assert trainer.scalers["D"].is_enabled()
    # A scale no fp16 gradient survives: the first steps must overflow and be skipped.
    for scaler in trainer.scalers.values():
        scaler.load_state_dict({**scaler.state_dict(), "scale": 2.0**30})
    before = [p.clone() for p in trainer.D.parameters()]
    _steps(trainer, 1)
    assert all(torch.equal(a, b) for a, b in zip(before, trainer.D.parameters(), strict=True))
    assert trainer.scalers["D"].get_scale() == 2.0**29  # halved after the skipped step
    # enough halvings and the steps go through
    for _ in range(40):
        _steps(trainer, 1)
        if any(not torch.equal(a, b) for a, b in zip(before, trainer.D.parameters(), strict=True)):
            break
    else:
        pytest.fail("the scale never came down far enough for a step")
    scale = trainer.scalers["D"].get_scale()
    assert scale < 2.0**29
    path = trainer.save()
    resumed = _trainer(tiny_archive, tmp_path / "again", "train.precision=fp16", "train.r1_gamma=0")
    resumed.restore(load_latest(path.parent)[0], truncate_stats=False)
    assert resumed.scalers["D"].get_scale() == scale


def test_fp32_on_the_cpu_has_no_loss_scaling(tiny_archive, tmp_path):
    trainer = _trainer(tiny_archive, tmp_path)
    assert not any(s.is_enabled() for s in trainer.scalers.values())
    _steps(trainer, 1)
    path = trainer.save()
    meta = json.loads(path.with_suffix(".json").read_text())["metadata"]
    assert meta["scalers"] == {"G": {}, "D": {}}


def test_compiled_main_phases_train_like_the_eager_ones(tiny_archive, tmp_path, monkeypatch):
    """train.compile wraps G's synthesis and D for the main phases only (the regularisers take
    gradients of gradients). aot_eager traces through Dynamo and AOTAutograd like the GPU
    compiler does, without generating code, so the graphs are checked here in seconds."""
    real_compile = torch.compile
    compiled = []

    def compile_for_test(module):
        compiled.append(module)
        return real_compile(module, backend="aot_eager")

    monkeypatch.setattr(torch, "compile", compile_for_test)
    eager = _trainer(tiny_archive, tmp_path / "eager", "train.style_mixing=0")
    traced = _trainer(
        tiny_archive, tmp_path / "traced", "train.style_mixing=0", "train.compile=true"
    )
    assert compiled == [traced.G.synthesis, traced.D]
    _steps(eager, 2)
    _steps(traced, 2)  # step 0 runs all four phases, R1 and path length included
    for a, b in zip(eager.G.parameters(), traced.G.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    for a, b in zip(eager.D.parameters(), traced.D.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_blocks_compute_in_fp32_on_the_cpu_without_a_reduced_type(tiny_archive, tmp_path):
    trainer = _trainer(tiny_archive, tmp_path, "train.precision=fp16")
    top = [b for b in trainer.G.synthesis.blocks() if isinstance(b, SynthesisBlock)][-1]
    assert top.use_fp16
    top.half_dtype = None  # the networks' own default, as generate and the metrics use them
    assert top.compute_dtype(torch.zeros(1)) == torch.float32
    assert top.compute_dtype(torch.zeros(1, device="meta")) == torch.float32


@pytest.mark.parametrize("setting", ["bf16", "fp16"])
def test_g_ema_renders_in_the_networks_own_precision_whatever_g_trains_in(
    tiny_archive, tmp_path, setting
):
    """The metrics, `best` and the sample grids must judge the pictures `generate` draws:
    G_ema's top blocks run fp32 on the CPU (fp16 on CUDA, as the official metrics)."""
    trainer = _trainer(tiny_archive, tmp_path, f"train.precision={setting}")
    _steps(trainer, 2)
    top_g = [b for b in trainer.G.synthesis.blocks() if isinstance(b, SynthesisBlock)][-1]
    top_ema = [b for b in trainer.G_ema.synthesis.blocks() if isinstance(b, SynthesisBlock)][-1]
    assert top_g.compute_dtype(torch.zeros(1)) == resolve_precision(setting, CPU).half
    assert top_ema.compute_dtype(torch.zeros(1)) == torch.float32
    fresh = _trainer(tiny_archive, tmp_path / "fp32", "train.precision=fp32").G_ema
    fresh.load_state_dict(trainer.G_ema.state_dict())
    ws = trainer.G_ema.mapping(torch.randn(2, trainer.G_ema.z_dim), None)
    with torch.no_grad():
        torch.testing.assert_close(
            trainer.G_ema.synthesis(ws, noise_mode="const"),
            fresh.synthesis(ws, noise_mode="const"),
        )


def test_the_run_records_and_logs_what_auto_chose(tiny_archive, tmp_path, monkeypatch):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    cfg = load_config("tiny-cpu", ["network.num_fp16_res=2", "train.tick_kimg=0.016"])
    lines: list[str] = []
    run_dir, _ = start(tiny_archive, cfg, tmp_path, total_kimg=0.016, log=lines.append)
    assert json.loads((run_dir / "run.json").read_text())["precision"] == "bf16"
    assert any("precision bf16 (auto)" in line for line in lines)
    ticks = [json.loads(line) for line in (run_dir / "stats.jsonl").read_text().splitlines()]
    assert {t["precision"] for t in ticks if "tick" in t} == {"bf16"}
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
    resume(run_dir, total_kimg=0.032, log=lines.append)
    run = json.loads((run_dir / "run.json").read_text())
    assert run["resumes"][-1]["precision"] == "fp32"


def test_a_network_without_reduced_blocks_trains_in_fp32_whatever_the_setting(
    tiny_archive, tmp_path
):
    cfg = load_config("tiny-cpu", ["train.precision=bf16"])  # tiny-cpu: num_fp16_res = 0
    run_dir, _ = start(tiny_archive, cfg, tmp_path, total_kimg=0.016, log=lambda *_: None)
    assert json.loads((run_dir / "run.json").read_text())["precision"] == "fp32"


def test_a_training_step_never_reads_values_back_from_the_device(
    tiny_archive, tmp_path, monkeypatch
):
    """On a GPU every read of a device value (.item(), a data-dependent shape, a Python bool of
    a tensor) makes the host wait for all queued work. On the meta device, which holds no
    values, any such read raises: a whole step with every phase, ADA's augmentation, the EMA
    and the running means must go through. (ADA's r_t, read every `augment.interval` steps,
    is the one planned read.)"""
    # the augment pipe pins its small host tensors before copying them (CUDA-only otherwise)
    monkeypatch.setattr(torch.Tensor, "pin_memory", lambda tensor: tensor)
    cfg = load_config("tiny-cpu", [*EVERY_PHASE, "train.pl_interval=2", "augment.p=0.5"])
    dataset = ImageDataset(tiny_archive, resolution=cfg.data.resolution)
    trainer = Trainer(cfg, dataset, tmp_path, DistInfo(0, 1, torch.device("meta")))
    assert {"G_pl", "D_r1"} <= set(phases_at(cfg.train, 0))
    assert trainer.augment._p == 0.5
    assert trainer.ada.interval > 2
    _steps(trainer, 2)
    assert trainer.progress.step == 2
    assert next(trainer.G.parameters()).device.type == "meta"
