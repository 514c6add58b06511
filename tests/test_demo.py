import json

import pytest
from rich.console import Console

import heroforge.demo as demo


@pytest.mark.slow
def test_demo_produces_every_stage_output(tmp_path, monkeypatch):
    monkeypatch.setattr(demo, "DEMO_KIMG", 0.064)  # the stages, not the training time, are tested
    monkeypatch.setattr(demo, "DEMO_FID_IMAGES", 8)
    outputs = demo.run_demo(tmp_path / "demo", Console(quiet=True))
    for path in outputs.values():
        assert path.exists()
    labels = json.loads(outputs["ground truth"].read_text())["images"]
    assert len(labels) == len(list(outputs["raw pictures"].iterdir())) > 0
    assert len(list(outputs["prepared pictures"].iterdir())) > 20
    assert outputs["sample grid"].suffix == ".png"
