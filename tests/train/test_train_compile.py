"""train.compile with inductor, the compiler that runs on the CPU (with the C++ compiler here).
test_train_precision.py traces the same graphs with aot_eager in seconds; this one builds and
runs the generated code, which takes minutes."""

import shutil
from pathlib import Path

import pytest
import torch
import torch._inductor.config as inductor_config
from torch._dynamo.utils import counters

from helpers.training import EVERY_PHASE
from heroforge.config import load_config
from heroforge.data.dataset import ImageDataset
from heroforge.runtime.dist import DistInfo
from heroforge.train.loop import Trainer
from heroforge.train.stats import TickStats

GRAPH_CACHE = ("miss", "hit", "bypass")


def _trainer(archive: Path, run_dir: Path, *overrides: str) -> Trainer:
    cfg = load_config("tiny-cpu", [*EVERY_PHASE, "train.precision=fp32", *overrides])
    dataset = ImageDataset(archive, resolution=cfg.data.resolution)
    return Trainer(cfg, dataset, run_dir, DistInfo(0, 1, torch.device("cpu")))


def _losses(trainer: Trainer) -> dict[str, float]:
    stats = TickStats()
    trainer.step(stats)
    return {key: value for key, value in stats.means().items() if key.startswith("loss/")}


@pytest.mark.slow
@pytest.mark.skipif(
    not (shutil.which("g++") or shutil.which("c++")), reason="inductor needs a C++ compiler"
)
def test_inductor_compiled_steps_match_the_eager_ones(tiny_archive, tmp_path, monkeypatch):
    # the compiled synthesis draws its noise from torch's generator, as eager does, instead
    # of inductor's own: otherwise the two see different noise and cannot be compared
    monkeypatch.setattr(inductor_config, "fallback_random", True)
    # its own cache: processes compiling the same graphs at once in the shared one in /tmp
    # can leave a truncated library there ("main.so: file too short") that later runs load
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))
    counters.clear()
    eager = _trainer(tiny_archive, tmp_path / "eager")
    compiled = _trainer(tiny_archive, tmp_path / "compiled", "train.compile=true")
    # step 0 runs every phase (R1 and path length eager in both); step 1 the main ones only.
    # G's first loss comes before any update: the same up to the order of float sums. Later
    # ones follow Adam steps, which move near-zero gradients by up to the learning rate.
    first_eager, first_compiled = _losses(eager), _losses(compiled)
    assert first_compiled["loss/G"] == pytest.approx(first_eager["loss/G"], rel=1e-5)
    assert first_compiled == pytest.approx(first_eager, rel=1e-2)
    assert _losses(compiled) == pytest.approx(_losses(eager), rel=1e-2)
    # every graph inductor compiles goes through its FX graph cache one of these ways
    compiled_graphs = sum(counters["inductor"][f"fxgraph_cache_{way}"] for way in GRAPH_CACHE)
    assert compiled_graphs >= 2  # at least G's synthesis and D
    # Adam (betas 0 and 0.99) moves a weight by at most about 1.42 lr a step, so the two
    # runs' weights can be 2 x 1.42 lr apart per step where a gradient near zero flips sign
    for net, lr in (("G", compiled.cfg.train.g_lr), ("D", compiled.cfg.train.d_lr)):
        pairs = zip(
            getattr(eager, net).parameters(), getattr(compiled, net).parameters(), strict=True
        )
        for a, b in pairs:
            torch.testing.assert_close(a, b, rtol=0, atol=2 * 2 * 1.42 * lr)
