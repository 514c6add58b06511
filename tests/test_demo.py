import json

import pytest
from rich.console import Console

from heroforge.demo import run_demo


@pytest.mark.slow
def test_demo_produces_every_stage_output(tmp_path):
    outputs = run_demo(tmp_path / "demo", Console(quiet=True))
    for path in outputs.values():
        assert path.exists()
    labels = json.loads(outputs["ground truth"].read_text())["images"]
    assert len(labels) == len(list(outputs["raw pictures"].iterdir())) > 0
