import json

import pytest
from rich.console import Console

import heroforge.demo as demo
from heroforge import rundir
from heroforge.config import load_config


@pytest.mark.slow
def test_demo_produces_every_stage_output(tmp_path, monkeypatch):
    monkeypatch.setattr(demo, "DEMO_KIMG", 0.064)  # the stages, not the training time, are tested
    monkeypatch.setattr(demo, "DEMO_FID_IMAGES", 8)
    monkeypatch.setattr(demo, "DEMO_COUNT", 100)  # enough pictures to train on, quick to prepare
    outputs = demo.run_demo(tmp_path / "demo", Console(quiet=True))
    for path in outputs.values():
        assert path.exists()
    labels = json.loads(outputs["ground truth"].read_text())["images"]
    assert len(labels) == len(list(outputs["raw pictures"].iterdir())) > 0
    assert len(list(outputs["prepared pictures"].iterdir())) > 20
    assert outputs["sample grid"].suffix == ".png"
    # the demo trains the recipe benchmarks/train_learning.py measures, not bare tiny-cpu
    trained_with, _ = rundir.read_run(outputs["training run"])
    assert trained_with.train == demo.demo_config().train
    assert trained_with.data == demo.demo_config().data


def test_demo_config_applies_overrides_after_the_demo_recipe():
    assert demo.demo_config(["train.seed=3"]).train.seed == 3
    assert demo.demo_config(["train.seed=3"]).network == load_config("tiny-cpu").network
