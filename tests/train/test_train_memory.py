"""What the training step leaves in memory between steps."""

import torch

from helpers.training import EVERY_PHASE
from heroforge.config import load_config
from heroforge.data.dataset import ImageDataset
from heroforge.runtime.dist import DistInfo
from heroforge.train.loop import Trainer
from heroforge.train.stats import TickStats


def test_a_step_frees_every_gradient_and_the_next_step_still_learns(tiny_archive, tmp_path):
    cfg = load_config("tiny-cpu", [*EVERY_PHASE, "train.pl_interval=2", "train.r1_interval=2"])
    dataset = ImageDataset(tiny_archive, resolution=cfg.data.resolution)
    trainer = Trainer(cfg, dataset, tmp_path, DistInfo(0, 1, torch.device("cpu")))
    stats = TickStats()
    for _ in range(2):  # step 0 runs all four phases, step 1 the main ones only
        before = [p.clone() for p in (*trainer.G.parameters(), *trainer.D.parameters())]
        trainer.step(stats)
        params = [*trainer.G.parameters(), *trainer.D.parameters()]
        # G's gradients are gone while D trains and the other way round
        assert all(p.grad is None for p in params)
        assert any(not torch.equal(a, b) for a, b in zip(before, params, strict=True))
